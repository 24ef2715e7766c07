"""The library layer that runs loads: one process or worker processes, a rate search, an
embedded sink, a graceful stop. The commands and the API only drive it (run.py, search.py).

    run.py        a whole load: plan, target, processes, checks judged once
    search.py     a rate search: steps of a load at rising rates, in one trio loop
    control.py    stop or abort a load from outside; its live counts
    inprocess.py  one run in this process
    plan.py       a load's share (--shard) over processes (--workers)
    workers.py    worker processes (forked or spawned) and their pool
    rounds.py     one round of a load over a pool, merged
    worker.py     a worker process's side
    channel.py    the frames between them; job.py, what a job is
    budget.py     one message budget shared by workers
    embedded.py   a qmqp-sink in a child process as the target
"""
