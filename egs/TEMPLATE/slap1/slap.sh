#!/usr/bin/env bash
# The recipe template of espnet2_slap: every corpus's run.sh calls this script (symlinked as ./slap.sh).
# Stages (--stage N --stop_stage M; --stop-stage also accepted):
#   1. data preparation: local/data.sh -> data/<set>/{wav.scp,text[,segments,utt2dur,labels...]}
#   2. audio formatting: mono, --fs, --audio_format, into dump/raw/<set> (sources untouched; tracks kept whole)
#   3. text tokenizer: sentencepiece on the training captions (--token_type bpe), or the vocabulary of a local
#      Hugging Face tokenizer (--token_type hugging_face --hf_tokenizer DIR)
#   4. statistics (shape files, feature normalisation stats), in --nj jobs through ${train_cmd}
#   5. training (--train_config; --ngpu N a node, --num_nodes M on a cluster, DDP through ESPnet's launcher;
#      --num_splits N shards the training lists for --multiple_iterator), through ${cuda_cmd}
#   6. the model to evaluate: checks the n-best average that ESPnet's trainer wrote at the end of stage 5 by the
#      rule of --model_selection (auto: the last keep_nbest_models epochs when the validation set has fewer than
#      100 clips, else the config's best_model_criterion), or --inference_model; records which epochs it holds
#      and why in <exp>/model_selection.json (RESULTS.md opens with it)
#   7. embeddings of the test sets (python -m espnet2_slap.bin.slap_embed) into <exp>/embed/<set>, in
#      --inference_nj jobs through ${decode_cmd}
#   8. scoring into <exp>/RESULTS.md and results.json (python -m espnet2_slap.bin.slap_results): retrieval,
#      modality gap, and what --score_config (default conf/score.yaml, when the recipe has one) and
#      --label_files ask (zero-shot single-label, multi-label and masked; MLP probes), the model loaded once
#   9. packing: the model, its config, token files and RESULTS.md into <exp>/packed_model.zip (slap_pack)
# <exp> is ${expdir}/slap_${tag} (--tag; default: the training config's name); <exp>/run.sh repeats the command
# that made it (options after it are added, e.g. <exp>/run.sh --stage 7).
# Evaluation only (a model trained elsewhere): --skip_train true skips stages 3-6 and 9, stages 1-2 prepare only
# the --test_sets, and stages 7-8 use --packed_model ZIP (stage 9's packed_model.zip, unpacked into <exp>/packed)
# or --inference_config CONFIG --inference_model PTH (--tag defaults to pretrained there); the model is read
# before stage 2, which formats the audio at its rate.
# The model's config owns the sampling rate and the tokenizer: --fs, --token_type and --hf_tokenizer default to
# the training config's (python -m espnet2_slap.bin.slap_config settings CONFIG); given, they override it.
# Every stage logs with timestamps, leaves a .done marker and is skipped when run again (delete the marker, or
# the directory, to redo it): data/.done, <dumpdir>/raw/<set>/.done, data/token_list/bpe_<bpe_model_type><nbpe>
# (or hugging_face)/.done, <expdir>/stats_<fs>/.done, <exp>/.train.done, <exp>/embed/<set>/.done,
# <exp>/.score.done, <exp>/.pack.done. Each marker records what its stage was made from (its options, the files
# it read, the markers of the stages whose outputs it used): when any of that changed the stage is redone, and
# so are those after it, with a line naming what changed. Stage 5 continues a training whose inputs are the same
# (a stage 5 that did not finish resumes; a larger max_epoch trains on from the last epoch) and otherwise moves
# the earlier training into <exp>/previous.<n> and trains anew.
# Nothing under data/ sources or the corpus is ever modified. Everything a run starts stops with it (kill -9 of
# run.sh included), and one run at a time writes into an exp dir: a second one is refused, naming the first
# (python -m espnet2_slap.bin.run_guard --help).
set -euo pipefail
declare -a all_args=("$@")  # for the guard (below), which runs this script again

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (slap.sh:${BASH_LINENO[0]}) $*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# ---- options: one a line, "name=default  # description"; --help prints them from here ----
stage=1                  # first stage to run
stop_stage=100           # last stage to run (--stop-stage works too)
nj=4                     # parallel jobs of stages 2 and 4
ngpu=0                   # GPUs a node for training (DDP above 1); stages 7-8 embed and score on a GPU when above 0
num_nodes=1              # nodes for training (needs cmd_backend=slurm, sge or pbs)
python=python            # the Python that has espnet2_slap
dumpdir=dump             # formatted audio and lists (stage 2)
expdir=exp               # statistics and experiments
train_set=train          # training data dir under data/
valid_set=valid          # validation data dir under data/
test_sets=test           # test data dirs under data/, space-separated
local_data_opts=""       # options of local/data.sh (stage 1)
fs=""                    # sampling rate of the formatted audio (stage 2): by default the model's (its config's front end); a value overrides the training config's (--frontend_conf fs=...) and must equal an evaluated model's
audio_format=flac        # flac, wav or ark (stage 2)
token_type=""            # bpe (sentencepiece trained in stage 3) or hugging_face (--hf_tokenizer): by default the training config's token_type
nbpe=500                 # sentencepiece vocabulary size
bpe_model_type=unigram   # sentencepiece model type
hf_tokenizer=""          # local Hugging Face tokenizer dir, with hugging_face tokens (default: the training config's bpemodel)
train_config=""          # training config (required unless --skip_train true)
tag=""                   # experiment name: exp/slap_<tag> (default: the config's name, or pretrained)
train_args=""            # more options of slap_train (stages 4 and 5)
num_splits=1             # N, or auto: one split per --split_size training utterances (1 below that)
split_size=100000        # training utterances a split with --num_splits auto
model_selection=auto     # the epochs stage 6's model averages: last (the last keep_nbest_models), config (the best by the config's best_model_criterion), auto (last with fewer than 100 validation clips, else config)
inference_model=""       # model file in the exp dir, evaluated instead of the average that --model_selection names
skip_train=false         # evaluation only: stages 1, 2 (test sets), 7, 8 with a model trained elsewhere
packed_model=""          # with --skip_train: a zip packed by stage 9 (espnet2 pack; config paths rewritten)
inference_config=""      # with --skip_train and no --packed_model: config.yaml and --inference_model PTH (the config's relative paths are read from the recipe that wrote it)
inference_nj=1           # jobs of stage 7 for each test set (through ${decode_cmd}; they share its chunks)
embed_args=""            # more options of slap_embed (stage 7), e.g. "--chunk_size 64 --batch_size 32"
score_config=""          # what stage 8 scores (YAML; default: conf/score.yaml when it exists)
label_files=""           # label files of the test sets for zero-shot scoring, e.g. "utt2instrument utt2mode"
# ---- end of options ----

option_lines() { sed -n '/^# ---- options: /,/^# ---- end of options/p' "$0" | grep -E '^[a-z_]+='; }
usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    echo
    echo "Options (--name value or --name=value; - and _ are the same):"
    option_lines | sed -E 's/^([a-z_]+)=("[^"]*"|[^ ]*) *# */\1\t\2\t/' \
        | awk -F '\t' '{ printf "  %-32s %s\n", "--" $1 " <" $2 ">", $3 }'
}
options=" $(option_lines | cut -d= -f1 | tr '\n' ' ')"
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
        --*) [ $# -ge 2 ] || die "option $1 needs a value"; name=$1; value=$2; shift 2 ;;
        *) die "unexpected argument $1 (see --help)" ;;
    esac
    name=${name#--}; name=${name//-/_}
    case "${options}" in
        *" ${name} "*) printf -v "${name}" '%s' "${value}" ;;
        *) die "unknown option --${name} (see --help)" ;;
    esac
done

[ -f path.sh ] && . ./path.sh
[ -f cmd.sh ] || die "cmd.sh is missing: it selects the job back-end"
. ./cmd.sh
if [ -z "${SLAP_GUARDED:-}" ]; then  # this script again, under a guard that stops all it starts when it ends
    export SLAP_GUARDED=1
    exec ${python} -m espnet2_slap.bin.run_guard supervise -- "$0" "${all_args[@]}"
fi
case "${skip_train}" in true|false) ;; *) die "--skip_train must be true or false, not ${skip_train}" ;; esac
if [ "${skip_train}" = false ]; then
    [ -n "${train_config}" ] || die "--train_config is required (or --skip_train true to evaluate a trained model)"
    [ -f "${train_config}" ] || die "--train_config ${train_config} does not exist"
    [ -z "${packed_model}${inference_config}" ] || die "--packed_model and --inference_config need --skip_train true"
    prepared_sets="${train_set} ${valid_set} ${test_sets}"
else
    if [ "${stop_stage}" -lt 7 ] || [ "${stage}" -gt 8 ]; then
        :  # no model needed
    elif [ -n "${packed_model}" ]; then
        [ -f "${packed_model}" ] || die "--packed_model ${packed_model} does not exist"
    else
        [ -n "${inference_config}" ] && [ -n "${inference_model}" ] \
            || die "--skip_train true needs --packed_model ZIP, or --inference_config CONFIG and --inference_model PTH"
        [ -f "${inference_config}" ] || die "--inference_config ${inference_config} does not exist"
        [ -f "${inference_model}" ] || die "--inference_model ${inference_model} does not exist"
    fi
    prepared_sets="${test_sets}"
fi
case "${audio_format}" in flac|wav) data_type=lazy_sound ;; ark) data_type=kaldi_ark ;;
    *) die "--audio_format must be flac, wav or ark, not ${audio_format}" ;; esac
# Training goes through ESPnet's launcher (espnet2.bin.launch): on several nodes it submits one job asking for
# them and starts a process a node in it with srun (cmd_backend=slurm) or mpirun (sge, pbs; needs mpi4py).
case "${num_nodes}:${cmd_backend:-local}" in
    1:*|*:slurm|*:sge|*:pbs) ;;
    *) die "--num_nodes ${num_nodes} needs a cluster back-end (cmd_backend=slurm, sge or pbs), not ${cmd_backend:-local}" ;;
esac
if [ -z "${tag}" ]; then
    if [ "${skip_train}" = true ]; then tag=pretrained; else tag=$(basename "${train_config}" .yaml); fi
fi
exp=${expdir}/slap_${tag}
case "${model_selection}" in auto|config|last) ;; *) die "--model_selection must be auto, config or last, not ${model_selection}" ;; esac
case "${fs}" in '') ;; *[!0-9]*|0*) die "--fs must be a sampling rate in Hz (or left out: the model's), not ${fs}" ;; esac
case "${token_type}" in ''|bpe|hugging_face) ;; *) die "--token_type must be bpe or hugging_face, not ${token_type}" ;; esac

run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
run_train_stage() { [ "${skip_train}" = false ] && run_stage "$1"; }
runs_any() { [ "${stage}" -le "$2" ] && [ "${stop_stage}" -ge "$1" ]; }  # runs_any <first> <last>: a stage in it runs
ran=(); already=()  # what this run did, and what earlier runs had done (the last line says both)
inputs() {  # inputs <name=value | @PATH>...: the "name<TAB>value" lines a marker records; a PATH (a file or a
    # directory) by a hash of its contents
    local w p
    for w in "$@"; do
        case "${w}" in
            @*) p=${w#@}
                if [ -f "${p}" ]; then printf '%s\tsha256 %s\n' "${p}" "$(sha256sum < "${p}" | cut -c1-16)"
                elif [ -d "${p}" ]; then
                    printf '%s\tsha256 %s\n' "${p}" "$(cd "${p}" && find . -type f ! -name '.*' -print0 \
                        | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16)"
                else printf '%s\tmissing\n' "${p}"; fi ;;
            *) printf '%s\t%s\n' "${w%%=*}" "${w#*=}" ;;
        esac
    done
}
db_settings() {  # the values db.sh gives its variables here (the environment wins over its defaults), one
    # "db.sh NAME=value" a line: stage 1 is redone when a corpus is pointed elsewhere, not only when db.sh changes
    [ -f db.sh ] || return 0
    (
        set +u
        # shellcheck disable=SC1091
        . ./db.sh
        for name in $(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' db.sh | sort -u); do
            printf 'db.sh %s=%s\n' "${name}" "${!name-}"
        done
    )
}
changed_inputs() {  # changed_inputs <marker> <inputs lines>: what differs, e.g. "fs 48000 -> 16000, data/test (contents)"
    awk -F '\t' 'function add(s) { items[++n] = s }
        NR == FNR { old[$1] = $2; next }
        { seen[$1] }
        !($1 in old) { add($1 " (new)"); next }
        old[$1] == $2 { next }
        $1 ~ /\/\.done$/ { add(substr($1, 1, length($1) - 6) " (made anew)"); next }
        $2 ~ /^(sha256 |missing$)/ || old[$1] ~ /^(sha256 |missing$)/ { add($1 " (" ($2 == "missing" ? "gone" : "contents") ")"); next }
        { add($1 " " old[$1] " -> " $2) }
        END { for (k in old) if (!(k in seen)) add(k " (no longer an input)")
              for (i = 1; i <= n && i <= 8; i++) printf "%s%s", (i > 1 ? ", " : ""), items[i]
              if (n > 8) printf " and %d more", n - 8
              print "" }' "$1" - <<< "$2"
}
done_or_mark() {  # done_or_mark <marker> <what> <inputs lines>: true (and a log line) when the marker records
    # these inputs; else false, and a marker that records others is removed with a line naming what changed
    if [ -f "$1" ] && [ "$(cat "$1")" = "$3" ]; then
        log "$2: already done ($1 records the same inputs; remove it to redo)"
        already+=("$2")
        return 0
    fi
    if [ -f "$1" ] && ! grep -q $'\t' "$1"; then
        log "$2: redoing it: $1 was left by an older slap.sh, which did not record what the stage was made from"
    elif [ -f "$1" ]; then
        log "$2: redoing it: changed since it was made: $(changed_inputs "$1" "$3")"
    fi
    rm -f "$1"
    ran+=("$2")
    return 1
}
mark_done() { printf '%s\n' "$2" > "$1"; }  # mark_done <marker> <inputs lines>
identity() {  # identity <PATH>... : one hash of the contents of these files and directories
    inputs "${@/#/@}" | sha256sum | cut -c1-16
}

if { [ "${skip_train}" = false ] && [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 5 ]; } \
        || { [ "${skip_train}" = true ] && runs_any 2 8; }; then
    mkdir -p "${exp}"
    exec 9>> "${exp}/.lock"  # held by this run and all it starts (see run_guard lock)
    ${python} -m espnet2_slap.bin.run_guard lock --fd 9 "${exp}" 2> >(grep -v ' INFO: ' >&2) || die "${exp} is in use by another run (above)"
fi

# ---- what the model's config says (tasks/recipe_config.py): its sampling rate, tokenizer and max_epoch as
# cfg_<name>, and in cfg_options the options stages 4 and 5 depend on, "feature:<key>" and "train:<key>" lines ----
code_id=""  # what the settings of a config also depend on: this package's code and ESPnet's version
read_settings() {  # read_settings <config> [training options...]; kept in <expdir>/.settings/ by a hash of the
    # config, the options and code_id (slap_config imports ESPnet's task: seconds a call)
    local out key cache
    [ -n "${code_id}" ] || code_id=$(${python} -c 'import hashlib, importlib.metadata as m, pathlib, espnet2_slap as p
h = hashlib.sha256(m.version("espnet").encode())
for f in sorted(pathlib.Path(p.__file__).parent.rglob("*.py")): h.update(f.read_bytes())
print(h.hexdigest()[:16])') || die "${python} cannot import espnet2_slap"
    [ -f "$1" ] || die "$1 does not exist"
    key=$({ printf '%s\n' "${code_id}" "${@:2}"; cat "$1"; } | sha256sum | cut -c1-16)
    cache=${expdir}/.settings/${key}
    if [ ! -f "${cache}.options" ] || [ ! -f "${cache}.settings" ]; then
        mkdir -p "${expdir}/.settings"
        ${python} -m espnet2_slap.bin.slap_config settings --options_out "${cache}.options.$$" "$1" -- "${@:2}" \
            > "${cache}.settings.$$" 2> >(grep -v ' INFO: ' >&2) \
            || { rm -f "${cache}.options.$$" "${cache}.settings.$$"; die "$1: its options could not be read (above)"; }
        mv "${cache}.options.$$" "${cache}.options"
        mv "${cache}.settings.$$" "${cache}.settings"
    fi
    cfg_options=$(cat "${cache}.options")
    while IFS=$'\t' read -r name value; do
        printf -v "cfg_${name}" '%s' "${value}"
    done < <(awk -F '\t' 'NF == 2 && $1 ~ /^[a-z_]+$/' "${cache}.settings")
}
fs_opts=(); model_files=()  # the training options --fs adds; the files an evaluated model's config names
if [ "${skip_train}" = false ] && runs_any 2 9; then
    # shellcheck disable=SC2086
    read_settings "${train_config}" ${train_args}
    if [ -n "${fs}" ] && [ "${fs}" != "${cfg_fs}" ]; then
        case " ${train_args} " in
            *"fs="*) die "--fs ${fs} and --train_args \"${train_args}\" ask for two sampling rates (${train_config} with those options: ${cfg_fs} Hz): give one" ;;
        esac
        log "--fs ${fs} overrides the ${cfg_fs} Hz of ${train_config}: training gets --frontend_conf fs=${fs}"
        fs_opts=(--frontend_conf "fs=${fs}")
        # shellcheck disable=SC2086
        read_settings "${train_config}" ${train_args} "${fs_opts[@]}"
    fi
    if [ -n "${token_type}" ] && [ "${token_type}" != "${cfg_token_type}" ]; then
        log "--token_type ${token_type} overrides ${train_config}'s token_type ${cfg_token_type:-(none)}"
    fi
    token_type=${token_type:-${cfg_token_type}}
    [ "${token_type}" != hugging_face ] || hf_tokenizer=${hf_tokenizer:-${cfg_bpemodel}}
    [ -n "${token_type}" ] || die "${train_config} has no token_type: give --token_type bpe or hugging_face"
elif [ "${skip_train}" = true ] && runs_any 2 8 && [ -n "${packed_model}${inference_config}" ]; then
    # the model trained elsewhere, read before stage 2: its config as <exp>/config.yaml (read by stages 7 and 8),
    # its paths read where it was made; its weights
    if [ -n "${packed_model}" ]; then
        log "Unpacking ${packed_model} into ${exp}/packed"
        # one line each: the config and the weights, as unpacked (paths in the config rewritten to <exp>/packed)
        unpacked=$(${python} -c "import sys; from espnet2_slap.checkpoints.packing import unpack_model; print(*unpack_model(*sys.argv[1:]), sep=chr(10))" \
            "${packed_model}" "${exp}/packed")
        inference_config=${unpacked%%$'\n'*}
        model_file=${unpacked#*$'\n'}
    else
        model_file=$(cd "$(dirname "${inference_model}")" && pwd)/$(basename "${inference_model}")
    fi
    ${python} -m espnet2_slap.bin.slap_config localize "${inference_config}" "${exp}/config.yaml.new" \
        2> >(grep -v ' INFO: ' >&2) || die "${inference_config} cannot be evaluated here (above)"
    cmp -s "${exp}/config.yaml.new" "${exp}/config.yaml" && rm "${exp}/config.yaml.new" || mv "${exp}/config.yaml.new" "${exp}/config.yaml"
    read_settings "${exp}/config.yaml"
    [ -z "${fs}" ] || [ "${fs}" = "${cfg_fs}" ] \
        || die "the model ${model_file} expects ${cfg_fs} Hz audio (the front end of ${inference_config}), --fs asks ${fs}: leave --fs out (stage 2 formats at the model's rate)"
    for f in "${cfg_token_list}" "${cfg_bpemodel}" "${cfg_stats_file}"; do [ -z "${f}" ] || model_files+=("${f}"); done
    log "Evaluating ${model_file} (config ${exp}/config.yaml: ${cfg_fs} Hz, ${cfg_token_type} tokens${cfg_bpemodel:+ from ${cfg_bpemodel}})"
elif [ -z "${fs}" ] && run_stage 2; then
    die "stage 2 needs a sampling rate: --fs, or the model whose rate it is (--packed_model, or --inference_config and --inference_model)"
fi
fs=${fs:-${cfg_fs:-}}
stats_dir=${expdir}/stats_${fs}
token_dir=data/token_list/${token_type}
[ "${token_type}" = bpe ] && token_dir=data/token_list/bpe_${bpe_model_type}${nbpe}
# ---- checks of what the stages to run need, before any runs ----
[ -n "${score_config}" ] || [ ! -f conf/score.yaml ] || score_config=conf/score.yaml
[ -z "${score_config}" ] || [ -f "${score_config}" ] || die "--score_config ${score_config} does not exist"
case "${inference_nj}" in ''|*[!0-9]*|0) die "--inference_nj must be a positive number, not ${inference_nj}" ;; esac
wanted_format="${fs} Hz ${audio_format} PCM_16"  # what stage 2 records in <dumpdir>/raw/<set>/audio_format
dump_holds_other() {  # dump_holds_other <dumpdir>: true when a set there is formatted otherwise than this run asks
    local record
    for record in "$1"/raw/*/audio_format; do
        [ ! -f "${record}" ] || [ "$(cat "${record}")" = "${wanted_format}" ] || return 0
    done
    return 1
}
if runs_any 2 8; then
    for dset in ${prepared_sets}; do
        record=${dumpdir}/raw/${dset}/audio_format
        [ ! -f "${record}" ] || [ "$(cat "${record}")" = "${wanted_format}" ] && continue
        fresh=dump_${fs}_${audio_format}; n=2  # a dump dir for this rate and format: unused, or holding only it
        while [ "${fresh}" = "${dumpdir}" ] || dump_holds_other "${fresh}"; do fresh=dump_${fs}_${audio_format}_${n}; n=$((n + 1)); done
        die "${dumpdir}/raw/${dset} holds audio formatted as $(cat "${record}"), this run asks ${wanted_format}: give another --dumpdir (--dumpdir ${fresh}), or remove ${dumpdir}/raw/${dset} to format it anew"
    done
fi
if [ "${token_type}" = hugging_face ] && [ "${skip_train}" = false ] && [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 3 ]; then
    [ -n "${hf_tokenizer}" ] || die "hugging_face tokens need --hf_tokenizer DIR (a local tokenizer directory), or bpemodel in ${train_config}"
    [ -d "${hf_tokenizer}" ] || die "--hf_tokenizer ${hf_tokenizer} does not exist: save the tokenizer (and, for a pretrained text encoder, the model) there first: local/download_pretrained.sh roberta-base fetches downloads/roberta-base (on a machine without internet access: copy downloads/ from one that has it), or train a sentencepiece tokenizer instead: --token_type bpe"
fi
if [ "${skip_train}" = false ] && [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 4 ]; then  # start files of the config
    ${python} -m espnet2_slap.bin.slap_fetch check --config "${train_config}" 2> >(grep -v ' INFO: ' >&2) \
        || die "${train_config} starts from files that are not there (above): fetch them, then run again"
fi

following=""
follow_logs() {  # follow_logs <pattern> <log>...: from now until stop_following, the lines of these job logs that
    # match, on the console with the log's name (the jobs of stages 2, 4 and 7 log their progress)
    { tail -n 0 -F "${@:2}" 2> /dev/null | awk -v pattern="$1" '/^==> .* <==$/ { name = $2; next }
        $0 ~ pattern { print name ": " $0; fflush() }'; } 2> /dev/null &  # (silent when stopped)
    following=$!
}
stop_following() { [ -z "${following}" ] || { sleep 1; pkill -P "${following}" 2> /dev/null; wait "${following}" 2> /dev/null; following=""; } || true; }
job_logs() { local n; for n in $(seq "$2"); do echo "${1/JOB/${n}}"; done; }  # job_logs <log with JOB> <jobs>

write_exp_run_sh() {  # <exp>/run.sh: the command that made the experiment, as ESPnet's templates write it
    { echo "#!/usr/bin/env bash"; echo "# made by $(date '+%Y-%m-%dT%H:%M:%S'); options given to it are added"
      printf 'cd %q && ./slap.sh' "$(pwd)"; printf ' %q' "${all_args[@]}"; echo ' "$@"'; } > "${exp}/run.sh"
    chmod +x "${exp}/run.sh"
}
if [ "${skip_train}" = false ]; then  # what the trained model reads beside its weights and config
    model_files=("${token_dir}" "${stats_dir}/train/feats_stats.npz")
    [ "${token_type}" != hugging_face ] || model_files+=("${hf_tokenizer}")
fi
model_id=""
set_model_id() {  # model_id: one hash of the model file, its config and the files it names, once a run
    [ -n "${model_id}" ] || model_id=$(identity "${model_file}" "${exp}/config.yaml" "${model_files[@]}")
}


if run_stage 1; then
    log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
    mapfile -t corpus_dirs < <(db_settings)
    made_from=$(inputs "local_data_opts=${local_data_opts}" @local @db.sh "${corpus_dirs[@]}")
    if ! done_or_mark data/.done "stage 1" "${made_from}"; then
        # shellcheck disable=SC2086
        local/data.sh ${local_data_opts}
        for dset in ${prepared_sets}; do
            for f in wav.scp text; do [ -s "data/${dset}/${f}" ] || die "local/data.sh made no data/${dset}/${f}"; done
        done
        mark_done data/.done "${made_from}"
    fi
fi

if run_stage 2; then
    log "Stage 2: audio formatting to ${fs} Hz mono ${audio_format} in ${dumpdir}/raw"
    for dset in ${prepared_sets}; do
        out=${dumpdir}/raw/${dset}
        made_from=$(inputs "fs=${fs}" "audio_format=${audio_format}" "@data/${dset}")
        done_or_mark "${out}/.done" "stage 2 ${dset}" "${made_from}" && continue
        mkdir -p "${out}/logs"
        seg_opts=()
        [ -f "data/${dset}/segments" ] && seg_opts=(--segments "data/${dset}/segments")
        mapfile -t logs < <(job_logs "${out}/logs/format.JOB.log" "${nj}")
        follow_logs "progress:" "${logs[@]}"
        ${train_cmd} JOB=1:"${nj}" "${out}/logs/format.JOB.log" \
            ${python} -m espnet2_slap.bin.format_audio --fs "${fs}" --audio_format "${audio_format}" \
                "${seg_opts[@]}" --job JOB --nj "${nj}" "data/${dset}/wav.scp" "${out}"
        stop_following
        for f in wav.scp utt2num_samples utt2dur skipped sources; do
            for n in $(seq "${nj}"); do cat "${out}/${f}.${n}" 2> /dev/null || true; done | LC_ALL=C sort > "${out}/${f}"
            rm -f "${out}/${f}".[0-9]*
        done
        [ -s "${out}/wav.scp" ] || die "stage 2 ${dset}: no audio could be formatted, see ${out}/logs and ${out}/skipped"
        [ -s "${out}/skipped" ] && log "stage 2 ${dset}: $(wc -l < "${out}/skipped") entries skipped, listed in ${out}/skipped"
        # every other per-utterance file (text, labels) restricted to the utterances that were formatted; class
        # lists (*.classes, one class a line) copied as they are
        for f in data/"${dset}"/*; do
            name=$(basename "${f}")
            case "${name}" in wav.scp|segments|utt2dur|utt2num_samples|skipped|sources|reco2*) continue ;; esac
            [ -f "${f}" ] || continue
            case "${name}" in *.classes) cp "${f}" "${out}/${name}"; continue ;; esac
            awk 'NR == FNR { keep[$1]; next } $1 in keep' "${out}/wav.scp" "${f}" | LC_ALL=C sort > "${out}/${name}"
        done
        log "stage 2 ${dset}: $(wc -l < "${out}/wav.scp") of $(wc -l < "data/${dset}/wav.scp") entries formatted"
        mark_done "${out}/.done" "${made_from}"
    done
fi

if run_train_stage 3; then
    log "Stage 3: ${token_type} tokenizer into ${token_dir}"
    if [ "${token_type}" = bpe ]; then  # sentencepiece trained on the training captions
        made_from=$(inputs "nbpe=${nbpe}" "bpe_model_type=${bpe_model_type}" "@${dumpdir}/raw/${train_set}/text")
    else  # the vocabulary of a tokenizer
        made_from=$(inputs "@${hf_tokenizer}")
    fi
    if ! done_or_mark "${token_dir}/.done" "stage 3" "${made_from}"; then
        if [ "${token_type}" = bpe ]; then
            ${python} -m espnet2_slap.bin.slap_tokenizer "${dumpdir}/raw/${train_set}/text" "${token_dir}" \
                --vocab_size "${nbpe}" --model_type "${bpe_model_type}"
        else
            ${python} -m espnet2_slap.bin.slap_tokenizer --hugging_face "${hf_tokenizer}" "${token_dir}"
        fi
        mark_done "${token_dir}/.done" "${made_from}"
    fi
fi

token_opts=(--token_type "${token_type}" --token_list "${token_dir}/tokens.txt")
if [ "${token_type}" = bpe ]; then token_opts+=(--bpemodel "${token_dir}/bpe.model"); else token_opts+=(--bpemodel "${hf_tokenizer}"); fi
data_opts=(
    --train_data_path_and_name_and_type "${dumpdir}/raw/${train_set}/wav.scp,speech,${data_type}"
    --train_data_path_and_name_and_type "${dumpdir}/raw/${train_set}/text,text,text"
    --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/wav.scp,speech,${data_type}"
    --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/text,text,text"
)

if run_train_stage 4; then
    log "Stage 4: statistics in ${nj} jobs into ${stats_dir}"
    made_from=$(grep '^feature:' <<< "${cfg_options}"; inputs "@${token_dir}/.done" \
        "@${dumpdir}/raw/${train_set}/.done" "@${dumpdir}/raw/${valid_set}/.done")
    if ! done_or_mark "${stats_dir}/.done" "stage 4" "${made_from}"; then
        logdir=${stats_dir}/logdir
        mkdir -p "${logdir}"
        for dset in train valid; do
            [ "${dset}" = train ] && src=${train_set} || src=${valid_set}
            awk -v n="${nj}" -v out="${logdir}/${dset}" '{ print > (out "." ((NR - 1) % n + 1) ".scp") }' \
                "${dumpdir}/raw/${src}/utt2num_samples"
        done
        mapfile -t logs < <(job_logs "${logdir}/stats.JOB.log" "${nj}")
        follow_logs "Niter:" "${logs[@]}"
        ${train_cmd} JOB=1:"${nj}" "${logdir}/stats.JOB.log" \
            ${python} -m espnet2_slap.bin.slap_train --collect_stats true --config "${train_config}" \
                --normalize none --use_preprocessor true "${token_opts[@]}" "${data_opts[@]}" \
                --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
                --output_dir "${logdir}/stats.JOB" ${train_args} "${fs_opts[@]}"
        stop_following
        # shellcheck disable=SC2046
        ${python} -m espnet2.bin.aggregate_stats_dirs $(seq -f "--input_dir ${logdir}/stats.%g" "${nj}") \
            --output_dir "${stats_dir}"
        mark_done "${stats_dir}/.done" "${made_from}"
    fi
fi

selection_rule=""; criterion_opts=()
choose_model_selection() {  # the rule of --model_selection: selection_rule, criterion_opts (stage 5), model_file
    local chosen criterion triple why
    chosen=$(${python} -m espnet2_slap.bin.slap_model_selection rule --model_selection "${model_selection}" \
        --train_config "${train_config}" --valid_list "${dumpdir}/raw/${valid_set}/wav.scp" \
        2> >(grep -v ' INFO: ' >&2)) || die "--model_selection ${model_selection}: no rule (above)"
    IFS=$'\t' read -r selection_rule criterion triple why <<< "${chosen}"
    # given to slap_train, --best_model_criterion replaces the config's list: only the last epochs are averaged
    [ "${selection_rule}" = last ] && criterion_opts=(--best_model_criterion "${triple}")
    log "Model selection: ${selection_rule}, ${criterion}.ave.pth (${why})"
    model_file=${exp}/${inference_model:-${criterion}.ave.pth}
    [ -z "${inference_model}" ] || log "Model selection: --inference_model ${inference_model} is evaluated instead"
}
if [ "${skip_train}" = false ] && [ "${stop_stage}" -ge 5 ] && [ "${stage}" -le 9 ]; then choose_model_selection; fi

training_done() {  # true when <exp> holds this training, finished; else false, with <exp> ready to train it: a
    # training of the same inputs is resumed (or continued to a larger max_epoch), any other moved aside
    local done=${exp}/.train.done started=${exp}/.train.inputs made="" n
    now=${train_inputs}$'\n'"max_epoch"$'\t'"${cfg_max_epoch}"
    if [ -f "${done}" ] && ! grep -q $'\t' "${done}"; then
        log "stage 5: already done (${done} was left by an older slap.sh, which did not record the training's inputs; remove it to train again)"
        already+=("stage 5")
        return 0
    fi
    if [ -f "${done}" ] && [ "$(cat "${done}")" = "${now}" ]; then
        log "stage 5: already done (${done} records the same inputs; remove it to train again)"
        already+=("stage 5")
        return 0
    fi
    ran+=("stage 5")
    if [ -f "${done}" ]; then made=$(cat "${done}"); elif [ -f "${started}" ]; then made=$(cat "${started}"); fi
    rm -f "${done}"
    [ -n "${made}" ] || return 1  # a new experiment (or one an older slap.sh started: ESPnet resumes it)
    if [ "$(grep -v '^max_epoch'$'\t' <<< "${made}")" = "${train_inputs}" ]; then
        made_max=$(awk -F '\t' '$1 == "max_epoch" { print $2 }' <<< "${made}")
        if [ -z "${made_max}" ]; then
            log "stage 5: resuming the training that did not finish (same inputs)"
            return 1
        elif [ "${cfg_max_epoch}" -gt "${made_max}" ]; then
            log "stage 5: max_epoch ${made_max} -> ${cfg_max_epoch}: training continues from its last epoch"
            return 1
        fi
    fi
    n=1
    while [ -e "${exp}/previous.${n}" ]; do n=$((n + 1)); done
    log "stage 5: training anew, changed since ${exp} was trained: $(changed_inputs <(printf '%s\n' "${made}") "${now}"); the earlier training (and what was made from it) is moved to ${exp}/previous.${n}"
    mkdir "${exp}/previous.${n}"
    find "${exp}" -mindepth 1 -maxdepth 1 ! -name .lock ! -name 'previous.*' -exec mv -t "${exp}/previous.${n}" {} +
    return 1
}
if run_train_stage 5 && [ -f "${stats_dir}/.done" ] && grep -q $'\t' "${stats_dir}/.done"; then
    # the statistics training reads must be of this config's features (a sweep's tasks share stage 4's)
    features=$(grep '^feature:' <<< "${cfg_options}" || true)
    [ "$(grep '^feature:' "${stats_dir}/.done" || true)" = "${features}" ] \
        || die "stage 5: the statistics in ${stats_dir} were made for other features than ${train_config}'s ($(changed_inputs <(grep '^feature:' "${stats_dir}/.done") "${features}")): run stage 4 again with this config (--stage 4), or give this config its own --expdir"
fi
if run_train_stage 5 && ! { log "Stage 5: training ${train_config} into ${exp} (log: ${exp}/train.log)";
        train_inputs=$(grep '^train:' <<< "${cfg_options}"; inputs "num_splits=${num_splits}" \
            "@${token_dir}/.done" "@${stats_dir}/.done" "@${dumpdir}/raw/${train_set}/.done" \
            "@${dumpdir}/raw/${valid_set}/.done"); training_done; }; then
    printf '%s\n' "${train_inputs}" > "${exp}/.train.inputs"
    write_exp_run_sh
    train_data_opts=("${data_opts[@]}" --train_shape_file "${stats_dir}/train/speech_shape")
    if [ "${num_splits}" = auto ]; then
        num_utts=$(wc -l < "${dumpdir}/raw/${train_set}/wav.scp")
        num_splits=$(( (num_utts + split_size - 1) / split_size ))
        log "--num_splits auto: ${num_utts} training utterances, ${split_size} a split: ${num_splits} split(s)"
    fi
    if [ "${num_splits}" -gt 1 ]; then
        split_dir=${stats_dir}/splits${num_splits}
        if [ ! -f "${split_dir}/speech_shape/num_splits" ]; then
            # split_scps wants the same keys in the same order in every list
            LC_ALL=C sort "${stats_dir}/train/speech_shape" > "${stats_dir}/train/speech_shape.sorted"
            ${python} -m espnet2.bin.split_scps --num_splits "${num_splits}" --output_dir "${split_dir}" \
                --scps "${dumpdir}/raw/${train_set}/wav.scp" "${dumpdir}/raw/${train_set}/text" \
                "${dumpdir}/raw/${train_set}/utt2num_samples" "${stats_dir}/train/speech_shape.sorted" \
                --names wav.scp text utt2num_samples speech_shape
        fi
        train_data_opts=(
            --train_data_path_and_name_and_type "${split_dir}/wav.scp,speech,${data_type}"
            --train_data_path_and_name_and_type "${split_dir}/text,text,text"
            --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/wav.scp,speech,${data_type}"
            --valid_data_path_and_name_and_type "${dumpdir}/raw/${valid_set}/text,text,text"
            --train_shape_file "${split_dir}/speech_shape" --multiple_iterator true
        )
    fi
    norm_opts=()
    grep -q '^normalize: *global_mvn' "${train_config}" && norm_opts=(--normalize_conf "stats_file=${stats_dir}/train/feats_stats.npz")
    # The launcher runs ${cuda_cmd} --gpu N [--num_nodes M ...] <log> and adds --ngpu, the DDP options (one
    # process a GPU, file:// rendezvous in ${exp} across nodes) and gloo without GPUs; it keeps older logs as
    # train.1.log, ... and on failure prints the log's end.
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.launch --cmd "${cuda_cmd}" --log "${exp}/train.log" --ngpu "${ngpu}" \
        --num_nodes "${num_nodes}" --init_file_prefix "${exp}/.dist_init_" --multiprocessing_distributed true -- \
        ${python} -m espnet2_slap.bin.slap_train --config "${train_config}" \
            "${token_opts[@]}" "${train_data_opts[@]}" --valid_shape_file "${stats_dir}/valid/speech_shape" \
            "${norm_opts[@]}" --resume true --output_dir "${exp}" ${train_args} "${fs_opts[@]}" "${criterion_opts[@]}" &
    train_pid=$!
    log "Stage 5: follow the training with: tail -f ${exp}/train.log (its epoch results and warnings follow here)"
    # the new train.log from its first line (the launcher keeps an older one as train.1.log, ...), until training ends
    tail --pid="${train_pid}" -n 0 -F "${exp}/train.log" 2> /dev/null | grep --line-buffered -E "epoch results|WARNING" || true
    wait "${train_pid}"
    mark_done "${exp}/.train.done" "${now}"
    rm -f "${exp}/.train.inputs"
fi

if run_train_stage 6; then
    log "Stage 6: the model to evaluate: ${model_file}"
    [ -e "${model_file}" ] || die "${model_file} is missing: did stage 5 finish? Was ${exp} trained with another --model_selection (its config.yaml's best_model_criterion)? (or give --inference_model, a file in ${exp})"
    record_opts=()
    [ -z "${inference_model}" ] || record_opts=(--inference_model "${inference_model}")
    recorded=$(${python} -m espnet2_slap.bin.slap_model_selection record --exp "${exp}" \
        --model_selection "${model_selection}" --train_config "${train_config}" \
        --valid_list "${dumpdir}/raw/${valid_set}/wav.scp" "${record_opts[@]}" 2> >(grep -v ' INFO: ' >&2)) \
        || die "stage 6: the model selection could not be recorded (above)"
    log "Stage 6: ${recorded}"
fi

if [ "${skip_train}" = true ] && { run_stage 7 || run_stage 8; }; then
    write_exp_run_sh  # the model was read before stage 2
fi

if run_stage 7; then
    device=cpu; gpu=0
    [ "${ngpu}" -gt 0 ] && { device=cuda; gpu=1; }
    for dset in ${test_sets}; do
        out=${exp}/embed/${dset}
        log "Stage 7: embeddings of ${dset} into ${out} (${inference_nj} job(s))"
        set_model_id
        made_from=$(inputs "model=${model_id}" "@${dumpdir}/raw/${dset}/.done" "@${dumpdir}/raw/${dset}/wav.scp" \
            "@${dumpdir}/raw/${dset}/text" "embed_args=${embed_args}")
        done_or_mark "${out}/.done" "stage 7 ${dset}" "${made_from}" && continue
        mkdir -p "${out}/logs"
        embed_opts=(--train_config "${exp}/config.yaml" --model_file "${model_file}" --data_dir "${dumpdir}/raw/${dset}"
            --output_dir "${out}" --device "${device}")
        logs=("${out}/logs/embed.log")
        [ "${inference_nj}" -le 1 ] || mapfile -t -O 1 logs < <(job_logs "${out}/logs/embed.JOB.log" "${inference_nj}")
        follow_logs "progress:" "${logs[@]}"
        if [ "${inference_nj}" -gt 1 ]; then
            # each job computes its share of the chunks (at most 256 clips a chunk, fewer to give every job one);
            # the call after them merges (and computes what is missing)
            clips=$(wc -l < "${dumpdir}/raw/${dset}/wav.scp")
            chunk_size=$(( (clips + inference_nj - 1) / inference_nj ))
            embed_opts+=(--chunk_size "$(( chunk_size < 256 ? chunk_size : 256 ))")
            # shellcheck disable=SC2086
            ${decode_cmd} --gpu "${gpu}" JOB=1:"${inference_nj}" "${out}/logs/embed.JOB.log" \
                ${python} -m espnet2_slap.bin.slap_embed "${embed_opts[@]}" --job JOB --nj "${inference_nj}" ${embed_args}
        fi
        # shellcheck disable=SC2086
        ${decode_cmd} --gpu "${gpu}" "${out}/logs/embed.log" \
            ${python} -m espnet2_slap.bin.slap_embed "${embed_opts[@]}" ${embed_args}
        stop_following
        mark_done "${out}/.done" "${made_from}"
    done
fi

if run_stage 8; then
    log "Stage 8: scoring into ${exp}/RESULTS.md${score_config:+ (${score_config})}"
    scored=()
    for dset in ${test_sets}; do
        scored+=("@${exp}/embed/${dset}/.done")
        for f in "${dumpdir}/raw/${dset}"/utt2* "${dumpdir}/raw/${dset}"/*.classes; do [ ! -f "${f}" ] || scored+=("@${f}"); done
    done
    set_model_id
    made_from=$(inputs "model=${model_id}" "test_sets=${test_sets}" "${scored[@]}" "label_files=${label_files}" \
        ${score_config:+"@${score_config}"} "@${exp}/model_selection.json")
    if ! done_or_mark "${exp}/.score.done" "stage 8" "${made_from}"; then
        score_opts=()
        [ -n "${score_config}" ] && score_opts=(--score_config "${score_config}")
        # shellcheck disable=SC2086
        ${python} -m espnet2_slap.bin.slap_results --exp "${exp}" --dumpdir "${dumpdir}/raw" \
            --test_sets ${test_sets} --label_files ${label_files} --model_file "${model_file#"${exp}/"}" \
            --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)" "${score_opts[@]}"
        mark_done "${exp}/.score.done" "${made_from}"
    fi
fi

if run_train_stage 9; then
    log "Stage 9: packing ${model_file} into ${exp}/packed_model.zip"
    packed=("${token_dir}/tokens.txt")
    [ "${token_type}" = bpe ] && packed+=("${token_dir}/bpe.model")
    [ -f "${stats_dir}/train/feats_stats.npz" ] && packed+=("${stats_dir}/train/feats_stats.npz")
    [ -f "${exp}/RESULTS.md" ] && packed+=("${exp}/RESULTS.md")
    pack_opts=()
    for f in "${packed[@]}"; do pack_opts+=(--option "${f}"); done
    set_model_id
    made_from=$(inputs "model=${model_id}" "${packed[@]/#/@}")
    if ! done_or_mark "${exp}/.pack.done" "stage 9" "${made_from}"; then
        ${python} -m espnet2_slap.bin.slap_pack --train_config "${exp}/config.yaml" \
            --model_file "${model_file}" "${pack_opts[@]}" --outpath "${exp}/packed_model.zip"
        mark_done "${exp}/.pack.done" "${made_from}"
    fi
fi
last_stage=$(( stop_stage < 9 ? stop_stage : 9 ))
log "Finished stages ${stage}-${last_stage} of ${exp}: ran ${ran[*]:-nothing}; already done before: ${already[*]:-nothing}"
