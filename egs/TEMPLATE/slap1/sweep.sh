#!/usr/bin/env bash
# A study of this recipe: its points (a training config and options each), each trained with every seed, as the
# tasks of one array job through ${cuda_cmd} (cmd.sh: on a cluster an array job, here up to --max_jobs_run at
# once), then one table and one plot of them all (python -m espnet2_slap.bin.slap_compare).
#   ./sweep.sh --study conf/sweep/lambda.yaml [--seeds "1 2"] [--max_jobs_run 2] [--ngpu 1] [-- run.sh options]
# The study file's format: espnet2_slap/queue/sweep.py. Stages 1-4 of ./run.sh run once (with the first point's
# config); each task is ./run.sh --stage 5 --stop_stage 8 with its point's config, --tag sweep_<study>/<point>_s<seed>
# and --train_args "<point's train_args> --seed <seed>", so a task's experiment is
# <expdir>/slap_sweep_<study>/<point>_s<seed>, with its RESULTS.md. Inside a task the recipe runs its stages on the
# task's own node (cmd_backend=local). Run again, a sweep redoes only what is missing (the recipe skips finished
# stages). Outputs in <expdir>/slap_sweep_<study>/: tasks.sh, logs/task.<n>.log, compare.md, compare.json,
# compare.png.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (sweep.sh:${BASH_LINENO[0]}) $*"; }
die() { log "ERROR: $*" >&2; exit 1; }

study=""; seeds=""; max_jobs_run=1; ngpu=0; expdir=exp; python=python; stage=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; echo "Options: --study FILE (required), --seeds \"N ...\", --max_jobs_run N (${max_jobs_run}), --ngpu N (${ngpu}), --expdir DIR (${expdir}), --stage 1|5 (5: stages 1-4 are done), --python PY"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        --study|--seeds|--max_jobs_run|--ngpu|--expdir|--python|--stage)
            [ $# -ge 2 ] || die "option $1 needs a value"; printf -v "${1#--}" '%s' "$2"; shift 2 ;;
        *) die "unknown option $1 (options of run.sh for every task go after --; see --help)" ;;
    esac
done
run_args=("$@")
[ -n "${study}" ] || die "--study FILE is required (e.g. conf/sweep/lambda.yaml)"
[ -f ./run.sh ] || die "run sweep.sh in a recipe directory (egs/<corpus>/slap1): ./run.sh is missing"
[ -f path.sh ] && . ./path.sh
. ./cmd.sh

# shellcheck disable=SC2086
seed_opts=(); [ -n "${seeds}" ] && seed_opts=(--seeds ${seeds})
name=$(${python} -m espnet2_slap.bin.slap_sweep "${study}" --out /dev/null --print_name)
dir=${expdir}/slap_sweep_${name}
num_tasks=$(${python} -m espnet2_slap.bin.slap_sweep "${study}" --out "${dir}" --expdir "${expdir}" "${seed_opts[@]}" -- "${run_args[@]}")
log "study ${name}: ${num_tasks} tasks (points x seeds) in ${dir}/tasks.sh"

if [ "${stage}" -le 4 ]; then
    first_config=$(sed -n '1s/.* --train_config \([^ ]*\) .*/\1/p' "${dir}/tasks.sh")
    log "stages 1-4 of ./run.sh, shared by all tasks (training config ${first_config})"
    ./run.sh --stage 1 --stop_stage 4 --train_config "${first_config}" --expdir "${expdir}" "${run_args[@]}"
fi

# a task: the n-th line of tasks.sh, in this directory, its stages on the task's own node
cat > "${dir}/task.sh" <<TASK
#!/usr/bin/env bash
set -euo pipefail
cd $(printf '%q' "$(pwd)")
export cmd_backend=local
eval "\$(sed -n "\${1}p" $(printf '%q' "${dir}/tasks.sh"))"
TASK
log "running ${num_tasks} tasks through \${cuda_cmd} (at most ${max_jobs_run} at once; logs: ${dir}/logs/task.<n>.log)"
failed=0
${cuda_cmd} --gpu "${ngpu}" --max-jobs-run "${max_jobs_run}" JOB=1:"${num_tasks}" "${dir}/logs/task.JOB.log" \
    bash "${dir}/task.sh" JOB || failed=1

done_exps=(); missing=()
while read -r e; do
    if [ -f "${e}/results.json" ]; then done_exps+=("${e}"); else missing+=("${e}"); fi
done < "${dir}/experiments"
[ "${#missing[@]}" -eq 0 ] || log "WARNING: ${#missing[@]} of ${num_tasks} tasks have no results (see their logs): ${missing[*]}"
[ "${#done_exps[@]}" -gt 0 ] || die "no task finished: nothing to compare"
# shellcheck disable=SC2046
eval "compare_opts=($(cat "${dir}/compare.opts"))"
${python} -m espnet2_slap.bin.slap_compare "${done_exps[@]}" --out "${dir}" "${compare_opts[@]}"
log "study ${name}: ${dir}/compare.md and compare.png (${#done_exps[@]} of ${num_tasks} tasks)"
[ "${failed}" -eq 0 ] && [ "${#missing[@]}" -eq 0 ] || die "some tasks failed (above)"
