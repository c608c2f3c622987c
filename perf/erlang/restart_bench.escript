#!/usr/bin/env escript
%%! +S 1
%% perf/erlang/restart_bench.escript - the Erlang side of fault/restart:
%% a one_for_one supervisor restarts a crashed gen_server; one restart is
%% crash + restart + the first call the new incarnation answers, as in
%% axon's fault/restart benchmark (perf/bench_fault.c).
%%
%% usage: restart_bench.escript [restarts per run] [runs]
%% prints one line per run and a final line
%%   erlang fault/restart median_ns_per_restart <ns>
%% Logging is turned off: OTP would otherwise print a crash report per
%% restart, which measures the logger rather than the restart.
-module(restart_bench).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, start_link/0]).

start_link() -> gen_server:start_link({local, bench_child}, ?MODULE, [], []).

%% One module plays both parts (an escript holds one module): init(sup) is
%% the supervisor's callback, init([]) the gen_server's.
init(sup) ->
    {ok, {#{strategy => one_for_one, intensity => 1000000000, period => 1},
          [#{id => bench_child, start => {?MODULE, start_link, []},
             restart => permanent, shutdown => 1000, type => worker}]}};
init([]) -> {ok, 0}.
handle_call(ping, _From, S) -> {reply, pong, S}.
handle_cast(crash, _S) -> exit(crash).

main(Args) ->
    {N, Runs} = case Args of
                    [A, B] -> {list_to_integer(A), list_to_integer(B)};
                    [A] -> {list_to_integer(A), 5};
                    [] -> {20000, 5}
                end,
    logger:set_primary_config(level, none),
    %% warm-up run, not counted
    _ = run(min(N, 2000)),
    Results = [begin
                   Ns = run(N),
                   io:format("erlang run ~p: ~.1f ns per restart (~p restarts)~n", [R, Ns, N]),
                   Ns
               end || R <- lists:seq(1, Runs)],
    Sorted = lists:sort(Results),
    Median = lists:nth((length(Sorted) + 1) div 2, Sorted),
    io:format("erlang fault/restart median_ns_per_restart ~.1f~n", [Median]),
    halt(0).

%% OTP's supervisor keeps every restart of the last `period` seconds (at
%% least 1 s) in a list it filters on each restart, so a long run at tens of
%% thousands of restarts per second measures that list (300 us per restart
%% at 5000 in a row here, 30-75 us at 500).  Each round therefore uses a
%% fresh supervisor for ?ROUND restarts; only the restarts are timed.
-define(ROUND, 100).
run(N) ->
    Rounds = max(1, N div ?ROUND),
    Total = lists:sum([round_ns() || _ <- lists:seq(1, Rounds)]),
    Total / (Rounds * ?ROUND).

round_ns() ->
    {ok, Sup} = supervisor:start_link(?MODULE, sup),
    Pid0 = wait_new(undefined),
    pong = gen_server:call(Pid0, ping),
    T0 = erlang:monotonic_time(nanosecond),
    Last = loop(?ROUND, Pid0),
    T1 = erlang:monotonic_time(nanosecond),
    unlink(Sup),
    Ref = erlang:monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end,
    %% the name is free again once the last child is gone
    wait_gone(Last),
    T1 - T0.

wait_gone(Pid) ->
    case is_process_alive(Pid) orelse whereis(bench_child) =/= undefined of
        true -> erlang:yield(), wait_gone(Pid);
        false -> ok
    end.

loop(0, Pid) -> Pid;
loop(K, Pid) ->
    Ref = erlang:monitor(process, Pid),
    gen_server:cast(Pid, crash),
    receive {'DOWN', Ref, process, Pid, _} -> ok end,
    New = wait_new(Pid),
    pong = gen_server:call(New, ping),
    loop(K - 1, New).

%% The registered name points at the new incarnation once the supervisor
%% restarted it.
wait_new(Old) ->
    case whereis(bench_child) of
        P when is_pid(P), P =/= Old -> P;
        _ -> erlang:yield(), wait_new(Old)
    end.
