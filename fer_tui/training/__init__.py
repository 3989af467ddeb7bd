"""Training: one arch per process, the run directory as its only output.

    fer-tui train --config configs/scratch.toml --arch resnet18 --runs-dir runs
    torchrun --nproc_per_node 2 -m fer_tui train ...      (DistributedDataParallel)

Shape of a run (see `fer_tui.runs` for the files and the event schema):
- the uint8 dataset goes to the device once; each step gathers a batch of indices, augments it
  there (`fer_tui.augment`) and standardises it the way eval and live do; no DataLoader;
- every epoch's shuffle and augmentation come from generators seeded by (seed, epoch, rank), and
  their state is saved in `last.pt`, so `--resume` draws exactly what an uninterrupted run would;
- SIGTERM/SIGINT finish the current step, then `last.pt` is saved *mid-epoch* (the epoch counter
  stays at the last completed epoch, plus the step reached and the epoch's running sums), so a
  resume continues that epoch at the next step: no work is lost and no epoch is repeated or
  skipped. After a `kill -9` the resume restarts the interrupted epoch from its start;
- `--arch all` (or several archs in the config) creates every run dir up front, then trains each
  arch in its own child process: together on a GPU, one after another on a CPU.

Modules, in the order a run meets them:

    arrays.py        the images a run uses, cut from the dataset (limit, holdout)
    distributed.py   rank and world under torchrun, the collectives
    optim.py         optimizer, learning-rate schedule, EMA of the weights
    trainer.py       Trainer: the epochs, evaluation, events
    checkpoints.py   what last.pt/best.pt/ema.pt hold, written in the background; resume
    run.py           fit_run: one run in this process (lock, signals, error events)
    group.py         train_many: one child process per arch
"""
