"""Training Glow: the original's optimizer, Horovod, checkpoints and training loop (openai/glow train.py).

    state.py        the loop's counters, checkpointed with the weights (TrainState)
    steps.py        the compiled training and validation steps
    optim.py        the original's Adam/Adamax/adam2 and Polyak average
    distributed.py  Horovod, or one process with the same interface
    elastic.py      an elastic job's in-memory state and its loop across workers that come and go
    checkpoints.py  where checkpoints live, which one to trust, whether it fits a model
    trainer.py      model + optimizer + checkpoints of one run: start, save, validate, sample
    loop.py         the epochs, in phases: train, validate and save, sample and log
    logs.py         train.txt/test.txt, TensorBoard events, the console line, sample grids
    runfiles.py     the logdir: one run at a time (a lock), --no-resume without losing the old run
    preemption.py   SIGTERM/SIGINT become a checkpoint at the next step boundary
    inference.py    --inference: encode and decode the validation set
"""
