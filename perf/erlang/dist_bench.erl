%% perf/erlang/dist_bench.erl - Erlang distribution between two nodes on one
%% machine: the peer axon's cluster benchmarks are compared with
%% (perf/scripts/erlang-dist.sh starts both nodes and runs this).
%%
%% erl ... -run dist_bench main PEERS WORKLOAD N SIZE [ACTORS]
%%   PEERS     the other nodes, comma-separated (pingpong and oneway use the
%%             first)
%%   pingpong  a process here and one on the peer bounce one message N times;
%%             prints the round trip in microseconds
%%   oneway    a process here sends N messages to a process on the peer,
%%             which answers once it has all of them; prints messages per second
%%   big       Savina "big": ACTORS processes spread evenly over this node and
%%             the peers, each sends N pings to random actors (answered by
%%             pongs); prints messages (pings + pongs) per second
%% Every message carries a binary of SIZE bytes (a ref-counted off-heap
%% binary above 64 bytes, copied into the distribution buffer either way).
%% Prints one line: RESULT peer=erlang_dist wl=... size=... key=value ...
%% and halts the peer node too.
-module(dist_bench).
-export([main/1, echo/0, sink/2, big_actor/3]).

main([Peers, Wl, NStr, SizeStr | Rest]) ->
    PeerNodes = [list_to_atom(P) || P <- string:lexemes(Peers, ",")],
    N = list_to_integer(NStr),
    Size = list_to_integer(SizeStr),
    Actors = case Rest of [A | _] -> list_to_integer(A); [] -> 64 end,
    [ok = connect(P, 200) || P <- PeerNodes],
    [ok = wait_module(P, 100) || P <- PeerNodes],
    Payload = binary:copy(<<"x">>, Size),
    Line = run(list_to_atom(Wl), PeerNodes, N, Payload, Actors),
    io:format("RESULT peer=erlang_dist wl=~s size=~B n=~B nodes=~B ~s~n",
              [Wl, Size, N, 1 + length(PeerNodes), Line]),
    [spawn(P, erlang, halt, [0]) || P <- PeerNodes],
    timer:sleep(50),
    halt(0);
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
    io_lib:format("actors=~B msgs_per_s=~B", [Actors, round(Msgs * 1.0e6 / max(Us, 1))]).

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
