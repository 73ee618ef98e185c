"""The recipes' queue layer: Kaldi-style job runner with local, Slurm, SGE, PBS and ssh back-ends."""
