"""The recipes' queue layer: Kaldi-style job runner with local, Slurm, SGE, PBS and ssh back-ends, the guard of a
job's processes (``run_guard``) and the progress lines its logs show (``progress``)."""
