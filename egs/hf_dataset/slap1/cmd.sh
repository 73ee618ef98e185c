# Source this file: it sets the commands the recipe runs its jobs with (Kaldi's convention), e.g.
#   ${train_cmd} JOB=1:4 exp/log/x.JOB.log python -m ... --part JOB
#   ${cuda_cmd} --gpu 1 exp/log/train.log python -m espnet2_slap.bin.slap_train ...
# Options of the runner (python -m espnet2_slap.bin.run_jobs --help): --max-jobs-run N, --gpu N, --mem 4G,
# --num_threads N, --time T, --num_nodes N (cluster back-ends map them to submit options through
# conf/<backend>.conf).
#
# cmd_backend: local (this machine), slurm, sge, pbs (conf/<backend>.conf), ssh (the hosts in conf/hosts,
# one a line, sharing this directory's file system). On slurm, sge and pbs, JOB=1:N is one array job.
# This file and conf/ are the recipe's own (copies made by egs/TEMPLATE/slap1/setup.sh): edit them for your
# cluster.
#
# Kaldi's own runners instead of ours, with KALDI_ROOT pointing at a Kaldi checkout: set the three commands
# below to one of (ESPnet's launcher knows a Slurm runner by its name slurm.pl, so stage 5 works with both)
#   "${KALDI_ROOT}/egs/wsj/s5/utils/parallel/slurm.pl --config conf/slurm.conf"
#   "${KALDI_ROOT}/egs/wsj/s5/utils/parallel/queue.pl --config conf/queue.conf"   # SGE: Kaldi's queue.conf
# Kaldi reads the same config format, but not our ${NAME} lines (conf/sge.conf, conf/pbs.conf): give it a conf
# from Kaldi's egs for SGE. Its jobs find this environment through ./path.sh, as ours do.
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
    local) _cmd="utils/local.sh" ;;
    # utils/slurm.pl is utils/slurm.sh under the name by which ESPnet's launcher (espnet2.bin.launch) knows a
    # Slurm runner, to start training on --num_nodes N nodes with srun
    slurm) _cmd="utils/slurm.pl --config conf/slurm.conf" ;;
    sge|pbs) _cmd="utils/${cmd_backend}.sh --config conf/${cmd_backend}.conf" ;;
    ssh) _cmd="utils/ssh.sh --hosts conf/hosts" ;;
    *) echo "cmd.sh: unknown cmd_backend=${cmd_backend} (local, slurm, sge, pbs or ssh)" >&2; return 1 ;;
esac
export train_cmd="${_cmd}"   # CPU jobs: data preparation, statistics
export cuda_cmd="${_cmd}"    # training: add --gpu N
export decode_cmd="${_cmd}"  # embedding extraction and evaluation
unset _cmd
