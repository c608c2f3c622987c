%% perf/erlang/dist_bench.erl - Erlang distribution between two nodes on one
%% machine: the peer axon's cluster benchmarks are compared with
%% (perf/scripts/erlang-dist.sh starts both nodes and runs this).
%%
%% erl ... -run dist_bench main PEERS WORKLOAD N SIZE [ACTORS [TIMEOUT_S [DROP]]]
%%   PEERS     the other nodes, comma-separated (pingpong and oneway use the
%%             first)
%%   pingpong  a process here and one on the peer bounce one message N times;
%%             prints the round trip in microseconds
%%   oneway    a process here sends N messages to a process on the peer,
%%             which answers once it has all of them; prints messages per second
%%   big       Savina "big": ACTORS processes spread evenly over this node and
%%             the peers, each sends N pings to random actors (answered by
%%             pongs); prints messages (pings + pongs) per second
%%   mesh      axon's cluster mesh: ACTORS processes, ACTORS / nodes on each
%%             node (this one and the peers), each sends N messages to
%%             uniformly random actors of all nodes (its own node and itself
%%             included), 64 per turn then a continuation message to itself
%%             (as axon's mesh_pump); every message carries its per-pair
%%             sequence number, each receiver checks per-pair order and, from
%%             the replayed seeded generators, exactly how many it gets from
%%             every source; prints messages per second from the start
%%             broadcast to the last receiver's done, and the CPU time all
%%             nodes' runtimes spent meanwhile per message (statistics
%%             runtime: ms resolution, and it includes the rpc that reads
%%             it).  A mismatch, or a receiver still short after TIMEOUT_S
%%             (default 60), prints why on stderr and exits 1 without a
%%             RESULT line.  DROP >= 0 (a test of that check): actor 0 skips
%%             sending its message number DROP (0-based), as a lost message.
%% Every message carries a binary of SIZE bytes (a ref-counted off-heap
%% binary above 64 bytes, copied into the distribution buffer either way).
%% Prints one line: RESULT peer=erlang_dist wl=... size=... key=value ...
%% and halts the peer node too.
-module(dist_bench).
-export([main/1, echo/0, sink/2, big_actor/3, mesh_actor/6]).

main([Peers, Wl, NStr, SizeStr | Rest]) ->
    PeerNodes = [list_to_atom(P) || P <- string:lexemes(Peers, ",")],
    N = list_to_integer(NStr),
    Size = list_to_integer(SizeStr),
    {Actors, TmoS, Drop} =
        case [list_to_integer(A) || A <- Rest] of
            [] -> {64, 60, -1};
            [A] -> {A, 60, -1};
            [A, T] -> {A, T, -1};
            [A, T, D | _] -> {A, T, D}
        end,
    put(mesh_opts, {TmoS, Drop}),
    [ok = connect(P, 200) || P <- PeerNodes],
    [ok = wait_module(P, 100) || P <- PeerNodes],
    Payload = binary:copy(<<"x">>, Size),
    Status =
        case run(list_to_atom(Wl), PeerNodes, N, Payload, Actors) of
            {error, Why} ->
                io:format(standard_error, "dist_bench: ~s~n", [Why]),
                1;
            Line ->
                io:format("RESULT peer=erlang_dist wl=~s size=~B n=~B nodes=~B ~s~n",
                          [Wl, Size, N, 1 + length(PeerNodes), Line]),
                0
        end,
    [spawn(P, erlang, halt, [0]) || P <- PeerNodes],
    timer:sleep(50),
    halt(Status);
main(Args) ->
    io:format(standard_error, "dist_bench: bad arguments ~p~n", [Args]),
    halt(2).

%% The peer may still be starting: retry for about 10 s.
connect(_, 0) -> {error, cannot_connect};
connect(Node, Tries) ->
    case net_kernel:connect_node(Node) of
        true -> ok;
        _ -> timer:sleep(50), connect(Node, Tries - 1)
    end.

wait_module(_, 0) -> {error, module_not_on_peer};
wait_module(Node, Tries) ->
    case rpc:call(Node, code, ensure_loaded, [?MODULE]) of
        {module, ?MODULE} -> ok;
        _ -> timer:sleep(50), wait_module(Node, Tries - 1)
    end.

now_us() -> erlang:monotonic_time(microsecond).

run(pingpong, [Peer | _], N, Payload, _) ->
    Echo = spawn(Peer, ?MODULE, echo, []),
    pp(Echo, Payload, N div 10 + 1),               % warm up
    T0 = now_us(),
    pp(Echo, Payload, N),
    Us = now_us() - T0,
    Echo ! stop,
    io_lib:format("rtt_us=~.3f msgs_per_s=~B", [Us / N, round(2 * N * 1.0e6 / max(Us, 1))]);
run(oneway, [Peer | _], N, Payload, _) ->
    Warm = spawn(Peer, ?MODULE, sink, [self(), N div 10 + 1]),
    blast(Warm, Payload, N div 10 + 1),
    receive {done, Warm} -> ok end,
    Sink = spawn(Peer, ?MODULE, sink, [self(), N]),
    T0 = now_us(),
    blast(Sink, Payload, N),
    receive {done, Sink} -> ok end,
    Us = now_us() - T0,
    io_lib:format("msgs_per_s=~B ns_per_msg=~.1f", [round(N * 1.0e6 / max(Us, 1)), Us * 1000 / N]);
run(big, Peers, N, Payload, Actors) ->
    Nodes = list_to_tuple([node() | Peers]),
    Pids = [spawn(element(I rem tuple_size(Nodes) + 1, Nodes), ?MODULE, big_actor,
                  [self(), N, Payload]) || I <- lists:seq(0, Actors - 1)],
    All = list_to_tuple(Pids),
    T0 = now_us(),
    [P ! {peers, All} || P <- Pids],
    [receive {done, P} -> ok end || P <- Pids],
    Us = now_us() - T0,
    [P ! stop || P <- Pids],
    Msgs = 2 * N * Actors,
    io_lib:format("actors=~B msgs_per_s=~B", [Actors, round(Msgs * 1.0e6 / max(Us, 1))]);
run(mesh, Peers, N, Payload, Actors) ->
    {TmoS, Drop} = get(mesh_opts),
    Nodes = list_to_tuple([node() | Peers]),
    K = tuple_size(Nodes),
    Per = Actors div K,
    Nm = Per * K,
    %% actor I on node I div Per, as axon's mesh_ref
    Pids = [spawn(element(I div Per + 1, Nodes), ?MODULE, mesh_actor,
                  [self(), I, Nm, N, Payload, if I =:= 0 -> Drop; true -> -1 end])
            || I <- lists:seq(0, Nm - 1)],
    All = list_to_tuple(Pids),
    Exp = mesh_expect(Nm, N),
    [P ! {setup, All, element(I + 1, Exp)} || {I, P} <- lists:enumerate(0, Pids)],
    Ready = [receive {ready, P} -> ok after TmoS * 1000 -> missing end || P <- Pids],
    case lists:member(missing, Ready) of
        true ->
            {error, "mesh: an actor did not get ready"};
        false ->
            Cpu0 = cpu_ms(Nodes),
            T0 = now_us(),
            [P ! go || P <- Pids],
            Res = mesh_wait(Nm, now_us() + TmoS * 1000000),
            Us = now_us() - T0,
            case Res of
                ok ->
                    Cpu = cpu_ms(Nodes) - Cpu0,
                    [P ! stop || P <- Pids],
                    io_lib:format("actors=~B msgs_per_s=~B cpu_us_per_msg=~.3f",
                                  [Nm, round(N * Nm * 1.0e6 / max(Us, 1)),
                                   Cpu * 1000 / (N * Nm)]);
                {timeout, Left} ->
                    {error, io_lib:format("mesh: ~B of ~B actors did not receive all their "
                                          "messages in ~B s (lost or stuck):~s",
                                          [Left, Nm, TmoS, mesh_short(Pids)])};
                {error, _} = E ->
                    E
            end
    end.

pp(_, _, 0) -> ok;
pp(Echo, Payload, K) ->
    Echo ! {self(), Payload},
    receive {Echo, _} -> pp(Echo, Payload, K - 1) end.

echo() ->
    receive
        {From, Msg} -> From ! {self(), Msg}, echo();
        stop -> ok
    end.

blast(_, _, 0) -> ok;
blast(Sink, Payload, K) -> Sink ! Payload, blast(Sink, Payload, K - 1).

sink(Parent, 0) -> Parent ! {done, self()};
sink(Parent, K) -> receive _ -> sink(Parent, K - 1) end.

%% Savina big: wait for the peer table, then ping random peers one at a
%% time, answering every ping received meanwhile; report after N pongs, and
%% keep answering pings until told to stop.
big_actor(Parent, N, Payload) ->
    receive {peers, All} -> big_loop(Parent, All, N, Payload, send) end.

big_loop(Parent, _All, 0, Payload, _) ->
    Parent ! {done, self()},
    big_serve(Payload);
big_loop(Parent, All, Left, Payload, send) ->
    Target = element(rand:uniform(tuple_size(All)), All),
    Target ! {ping, self(), Payload},
    big_loop(Parent, All, Left, Payload, wait);
big_loop(Parent, All, Left, Payload, wait) ->
    receive
        {ping, From, _} -> From ! {pong, Payload}, big_loop(Parent, All, Left, Payload, wait);
        {pong, _} -> big_loop(Parent, All, Left - 1, Payload, send)
    end.

big_serve(Payload) ->
    receive
        {ping, From, _} -> From ! {pong, Payload}, big_serve(Payload);
        stop -> ok
    end.

%% ---- mesh -----------------------------------------------------------------

%% CPU time of every node's runtime system (all its threads), ms: what the
%% nodes spent, whatever else the machine ran meanwhile.
cpu_ms(Nodes) ->
    lists:sum([element(1, rpc:call(Nd, erlang, statistics, [runtime]))
               || Nd <- tuple_to_list(Nodes)]).

%% The seeded generator of actor S (0-based) for the targets it sends to:
%% every node can replay it, as axon's mesh_seed.
mesh_seed(S) -> rand:seed_s(exsss, {S + 1, 16#9E3779B9, 16#7F4A7C15}).

%% Exp: a tuple with one tuple per receiver R: how many messages each
%% source S sends to R (element S + 1).
mesh_expect(Nm, N) ->
    C = counters:new(Nm * Nm, []),
    [mesh_count(C, S, Nm, N, mesh_seed(S)) || S <- lists:seq(0, Nm - 1)],
    list_to_tuple([list_to_tuple([counters:get(C, R * Nm + S + 1) || S <- lists:seq(0, Nm - 1)])
                   || R <- lists:seq(0, Nm - 1)]).

mesh_count(_, _, _, 0, _) -> ok;
mesh_count(C, S, Nm, Left, Seed) ->
    {T, Seed1} = rand:uniform_s(Nm, Seed),
    counters:add(C, (T - 1) * Nm + S + 1, 1),
    mesh_count(C, S, Nm, Left - 1, Seed1).

%% Wait for every receiver's done (or the first complaint, or the deadline).
mesh_wait(0, _) -> ok;
mesh_wait(Left, Deadline) ->
    receive
        {done, _} -> mesh_wait(Left - 1, Deadline);
        {bad, _, Why} -> {error, Why}
    after max(0, (Deadline - now_us()) div 1000) -> {timeout, Left}
    end.

%% After a timeout: the receivers still short, from each actor.
mesh_short(Pids) ->
    [P ! {status, self()} || P <- Pids],
    lists:flatten(
      [receive
           {status, P, Me, Got, Want} when Got =/= Want ->
               io_lib:format(" actor ~B got ~B of ~B;", [Me, Got, Want]);
           {status, P, _, _, _} -> ""
       after 2000 -> " an actor did not answer;"
       end || P <- Pids]).

%% A mesh actor: in counters (per source S, key S) and out counters (per
%% target T (1-based), key Nm + T) in the process dictionary: O(1), no allocation.
mesh_actor(Parent, Me, Nm, N, Payload, Drop) ->
    receive {setup, All, Exp} -> ok end,
    [put(S, 0) || S <- lists:seq(0, Nm - 1)],
    [put(Nm + T, 0) || T <- lists:seq(1, Nm)],
    Total = lists:sum(tuple_to_list(Exp)),
    Parent ! {ready, self()},
    receive go -> ok end,
    St = {Parent, Me, All, Nm, N, Payload, Drop, Exp, Total},
    Sender = mesh_pump(St, mesh_seed(Me), N),
    mesh_check(St, 0),
    mesh_loop(St, Sender, 0).

%% The sender's state after a chunk: {Seed, Left}; a continuation to self
%% when there is more (other actors' messages queued meanwhile come first).
mesh_pump({_, Me, All, Nm, N, Payload, Drop, _, _}, Seed, Left) ->
    R = mesh_chunk(All, Nm, N, Me, Payload, Drop, Seed, Left, 64),
    case R of
        {_, 0} -> R;
        _ -> self() ! cont, R
    end.

mesh_chunk(_, _, _, _, _, _, Seed, Left, C) when C =:= 0; Left =:= 0 -> {Seed, Left};
mesh_chunk(All, Nm, N, Me, Payload, Drop, Seed, Left, C) ->
    {T, Seed1} = rand:uniform_s(Nm, Seed),
    Seq = put(Nm + T, get(Nm + T) + 1),
    if
        N - Left =:= Drop -> ok; % the test of the count check: lost
        true -> element(T, All) ! {m, Me, Seq, Payload}
    end,
    mesh_chunk(All, Nm, N, Me, Payload, Drop, Seed1, Left - 1, C - 1).

mesh_loop(St, {Seed, Left}, Got) ->
    {Parent, Me, _, _, _, _, _, _, Total} = St,
    receive
        {m, Src, Seq, _} ->
            case get(Src) of
                Seq when Got < Total ->
                    put(Src, Seq + 1),
                    mesh_check(St, Got + 1),
                    mesh_loop(St, {Seed, Left}, Got + 1);
                Want when Got < Total ->
                    Parent ! {bad, Me, io_lib:format(
                                         "mesh: pair ~B->~B: got seq ~B, expected ~p (order or "
                                         "exactly-once broken)", [Src, Me, Seq, Want])},
                    mesh_idle(Me, Got, Total);
                _ ->
                    Parent ! {bad, Me, io_lib:format(
                                         "mesh: actor ~B received more than the ~B messages sent "
                                         "to it", [Me, Total])},
                    mesh_idle(Me, Got, Total)
            end;
        cont ->
            mesh_loop(St, mesh_pump(St, Seed, Left), Got);
        {status, From} ->
            From ! {status, self(), Me, Got, Total},
            mesh_loop(St, {Seed, Left}, Got);
        stop ->
            ok
    end.

%% All in: every source sent exactly what its replayed generator says.
mesh_check({Parent, Me, _, Nm, _, _, _, Exp, Total}, Got) when Got =:= Total ->
    case [S || S <- lists:seq(0, Nm - 1), get(S) =/= element(S + 1, Exp)] of
        [] ->
            Parent ! {done, Me};
        [S | _] ->
            Parent ! {bad, Me, io_lib:format("mesh: actor ~B got ~B messages from ~B, expected ~B",
                                             [Me, get(S), S, element(S + 1, Exp)])}
    end;
mesh_check(_, _) -> ok.

mesh_idle(Me, Got, Total) ->
    receive
        {status, From} -> From ! {status, self(), Me, Got, Total}, mesh_idle(Me, Got, Total);
        stop -> ok;
        _ -> mesh_idle(Me, Got, Total)
    end.
