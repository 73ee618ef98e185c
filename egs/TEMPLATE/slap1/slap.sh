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
# or --inference_config CONFIG --inference_model PTH (--tag defaults to pretrained there).
# Every stage logs with timestamps, leaves a .done marker and is skipped when run again (delete the marker, or
# the directory, to redo it): data/.done, <dumpdir>/raw/<set>/.done, data/token_list/<type>/.done,
# <expdir>/stats_<fs>/.done, <exp>/.train.done (a stage 5 that did not finish resumes training),
# <exp>/embed/<set>/.done, <exp>/.score.done, <exp>/.pack.done. The markers of stages 7-9 hold the identity of
# the model file, config and test data they were made from: another model or changed data redoes them.
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
fs=48000                 # sampling rate of the formatted audio (stage 2); the front end must expect it
audio_format=flac        # flac, wav or ark (stage 2)
token_type=bpe           # bpe (sentencepiece trained in stage 3) or hugging_face (--hf_tokenizer)
nbpe=500                 # sentencepiece vocabulary size
bpe_model_type=unigram   # sentencepiece model type
hf_tokenizer=""          # local Hugging Face tokenizer dir, with --token_type hugging_face
train_config=""          # training config (required unless --skip_train true)
tag=""                   # experiment name: exp/slap_<tag> (default: the config's name, or pretrained)
train_args=""            # more options of slap_train (stages 4 and 5)
num_splits=1             # N, or auto: one split per --split_size training utterances (1 below that)
split_size=100000        # training utterances a split with --num_splits auto
model_selection=auto     # the epochs stage 6's model averages: last (the last keep_nbest_models), config (the best by the config's best_model_criterion), auto (last with fewer than 100 validation clips, else config)
inference_model=""       # model file in the exp dir, evaluated instead of the average that --model_selection names
skip_train=false         # evaluation only: stages 1, 2 (test sets), 7, 8 with a model trained elsewhere
packed_model=""          # with --skip_train: a zip packed by stage 6 (espnet2 pack; config paths rewritten)
inference_config=""      # with --skip_train and no --packed_model: config.yaml and --inference_model PTH
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
stats_dir=${expdir}/stats_${fs}
token_dir=data/token_list/${token_type}
[ "${token_type}" = bpe ] && token_dir=data/token_list/bpe_${bpe_model_type}${nbpe}
case "${model_selection}" in auto|config|last) ;; *) die "--model_selection must be auto, config or last, not ${model_selection}" ;; esac

run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
run_train_stage() { [ "${skip_train}" = false ] && run_stage "$1"; }
ran=(); already=()  # what this run did, and what earlier runs had done (the last line says both)
done_or_mark() {  # done_or_mark <marker> <what> [<identity>]: true (and a log line) when the stage is done
    # A marker holds the identity of what its stage was made from (empty for stages 1-4); one that holds another
    # identity is stale: it is removed and the stage redone.
    if [ -f "$1" ] && [ "$(cat "$1")" = "${3:-}" ]; then
        log "$2: already done ($1 exists; remove it to redo)"
        already+=("$2")
        return 0
    fi
    if [ -f "$1" ]; then log "$2: made from another model or data than now ($1): redoing it"; rm -f "$1"; fi
    ran+=("$2")
    return 1
}
mark_done() { printf '%s' "${2:-}" > "$1"; }  # mark_done <marker> [<identity>]
identity() {  # identity <word>... : a hash of these words and of the contents of those that are files
    local w
    for w in "$@"; do echo "${w}"; if [ -f "${w}" ]; then cat "${w}"; fi; done | sha256sum | cut -d' ' -f1
}
# ---- checks of what the stages to run need, before any runs ----
[ -n "${score_config}" ] || [ ! -f conf/score.yaml ] || score_config=conf/score.yaml
[ -z "${score_config}" ] || [ -f "${score_config}" ] || die "--score_config ${score_config} does not exist"
case "${inference_nj}" in ''|*[!0-9]*|0) die "--inference_nj must be a positive number, not ${inference_nj}" ;; esac
for dset in ${prepared_sets}; do  # stage 2 records the rate and format of each set it formats
    record=${dumpdir}/raw/${dset}/audio_format
    [ ! -f "${record}" ] || [ "$(cat "${record}")" = "${fs} Hz ${audio_format} PCM_16" ] \
        || die "${dumpdir}/raw/${dset} holds audio formatted as $(cat "${record}"), this run asks ${fs} Hz ${audio_format}: give another --dumpdir (e.g. --dumpdir dump_${fs}), or remove ${dumpdir}/raw/${dset} to format it anew"
done
if [ "${token_type}" = hugging_face ] && [ "${skip_train}" = false ] && [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 3 ]; then
    [ -n "${hf_tokenizer}" ] || die "--token_type hugging_face needs --hf_tokenizer DIR (a local tokenizer directory)"
    [ -d "${hf_tokenizer}" ] || die "--hf_tokenizer ${hf_tokenizer} does not exist: save the tokenizer (and, for a pretrained text encoder, the model) there first: local/download_pretrained.sh roberta-base fetches downloads/roberta-base (on a machine without internet access: copy downloads/ from one that has it), or train a sentencepiece tokenizer instead: --token_type bpe"
fi
if [ "${skip_train}" = false ] && [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 4 ]; then  # start files of the config
    ${python} -m espnet2_slap.bin.slap_fetch check --config "${train_config}" 2> >(grep -v ' INFO: ' >&2) \
        || die "${train_config} starts from files that are not there (above): fetch them, then run again"
fi
if { [ "${skip_train}" = false ] && [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 5 ]; } || { [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 7 ]; }; then
    mkdir -p "${exp}"
    exec 9>> "${exp}/.lock"  # held by this run and all it starts (see run_guard lock)
    ${python} -m espnet2_slap.bin.run_guard lock --fd 9 "${exp}" 2> >(grep -v ' INFO: ' >&2) || die "${exp} is in use by another run (above)"
fi

write_exp_run_sh() {  # <exp>/run.sh: the command that made the experiment, as ESPnet's templates write it
    { echo "#!/usr/bin/env bash"; echo "# made by $(date '+%Y-%m-%dT%H:%M:%S'); options given to it are added"
      printf 'cd %q && ./slap.sh' "$(pwd)"; printf ' %q' "${all_args[@]}"; echo ' "$@"'; } > "${exp}/run.sh"
    chmod +x "${exp}/run.sh"
}
model_id=""
set_model_id() {  # model_id: the identity of the model file and its config, hashed once a run
    [ -n "${model_id}" ] || model_id=$(identity "${model_file}" "${exp}/config.yaml")
}

if run_stage 1; then
    log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
    if ! done_or_mark data/.done "stage 1"; then
        # shellcheck disable=SC2086
        local/data.sh ${local_data_opts}
        for dset in ${prepared_sets}; do
            for f in wav.scp text; do [ -s "data/${dset}/${f}" ] || die "local/data.sh made no data/${dset}/${f}"; done
        done
        touch data/.done
    fi
fi

if run_stage 2; then
    log "Stage 2: audio formatting to ${fs} Hz mono ${audio_format} in ${dumpdir}/raw"
    for dset in ${prepared_sets}; do
        out=${dumpdir}/raw/${dset}
        done_or_mark "${out}/.done" "stage 2 ${dset}" && continue
        mkdir -p "${out}/logs"
        seg_opts=()
        [ -f "data/${dset}/segments" ] && seg_opts=(--segments "data/${dset}/segments")
        ${train_cmd} JOB=1:"${nj}" "${out}/logs/format.JOB.log" \
            ${python} -m espnet2_slap.bin.format_audio --fs "${fs}" --audio_format "${audio_format}" \
                "${seg_opts[@]}" --job JOB --nj "${nj}" "data/${dset}/wav.scp" "${out}"
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
        touch "${out}/.done"
    done
fi

if run_train_stage 3; then
    log "Stage 3: ${token_type} tokenizer into ${token_dir}"
    if ! done_or_mark "${token_dir}/.done" "stage 3"; then
        if [ "${token_type}" = bpe ]; then
            ${python} -m espnet2_slap.bin.slap_tokenizer "${dumpdir}/raw/${train_set}/text" "${token_dir}" \
                --vocab_size "${nbpe}" --model_type "${bpe_model_type}"
        elif [ "${token_type}" = hugging_face ]; then
            [ -n "${hf_tokenizer}" ] || die "--token_type hugging_face needs --hf_tokenizer DIR"
            ${python} -m espnet2_slap.bin.slap_tokenizer --hugging_face "${hf_tokenizer}" "${token_dir}"
        else
            die "--token_type must be bpe or hugging_face, not ${token_type}"
        fi
        touch "${token_dir}/.done"
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
    if ! done_or_mark "${stats_dir}/.done" "stage 4"; then
        logdir=${stats_dir}/logdir
        mkdir -p "${logdir}"
        for dset in train valid; do
            [ "${dset}" = train ] && src=${train_set} || src=${valid_set}
            awk -v n="${nj}" -v out="${logdir}/${dset}" '{ print > (out "." ((NR - 1) % n + 1) ".scp") }' \
                "${dumpdir}/raw/${src}/utt2num_samples"
        done
        ${train_cmd} JOB=1:"${nj}" "${logdir}/stats.JOB.log" \
            ${python} -m espnet2_slap.bin.slap_train --collect_stats true --config "${train_config}" \
                --normalize none --use_preprocessor true "${token_opts[@]}" "${data_opts[@]}" \
                --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
                --output_dir "${logdir}/stats.JOB" ${train_args}
        # shellcheck disable=SC2046
        ${python} -m espnet2.bin.aggregate_stats_dirs $(seq -f "--input_dir ${logdir}/stats.%g" "${nj}") \
            --output_dir "${stats_dir}"
        touch "${stats_dir}/.done"
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

if run_train_stage 5 && ! { log "Stage 5: training ${train_config} into ${exp} (log: ${exp}/train.log)";
        done_or_mark "${exp}/.train.done" "stage 5"; }; then
    mkdir -p "${exp}"
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
            "${norm_opts[@]}" --resume true --output_dir "${exp}" ${train_args} "${criterion_opts[@]}" &
    train_pid=$!
    log "Stage 5: follow the training with: tail -f ${exp}/train.log (its epoch results and warnings follow here)"
    # the new train.log from its first line (the launcher keeps an older one as train.1.log, ...), until training ends
    tail --pid="${train_pid}" -n 0 -F "${exp}/train.log" 2> /dev/null | grep --line-buffered -E "epoch results|WARNING" || true
    wait "${train_pid}"
    mark_done "${exp}/.train.done"
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
    # the model trained elsewhere: its config as <exp>/config.yaml (read by stages 7 and 8), its weights
    mkdir -p "${exp}"
    if [ -n "${packed_model}" ]; then
        log "Unpacking ${packed_model} into ${exp}/packed"
        # one line each: the config and the weights, as unpacked (paths in the config rewritten to <exp>/packed)
        unpacked=$(${python} -c "import sys; from espnet2_slap.utils.packing import unpack_model; print(*unpack_model(*sys.argv[1:]), sep=chr(10))" \
            "${packed_model}" "${exp}/packed")
        inference_config=${unpacked%%$'\n'*}
        model_file=${unpacked#*$'\n'}
    else
        model_file=$(cd "$(dirname "${inference_model}")" && pwd)/$(basename "${inference_model}")
    fi
    cmp -s "${inference_config}" "${exp}/config.yaml" || cp "${inference_config}" "${exp}/config.yaml"
    write_exp_run_sh
    log "Evaluating ${model_file} (config ${exp}/config.yaml)"
fi

if run_stage 7; then
    device=cpu; gpu=0
    [ "${ngpu}" -gt 0 ] && { device=cuda; gpu=1; }
    for dset in ${test_sets}; do
        out=${exp}/embed/${dset}
        log "Stage 7: embeddings of ${dset} into ${out} (${inference_nj} job(s))"
        set_model_id
        made_from=$(identity "${model_id}" "${dumpdir}/raw/${dset}/wav.scp" "${dumpdir}/raw/${dset}/text" "${embed_args}")
        done_or_mark "${out}/.done" "stage 7 ${dset}" "${made_from}" && continue
        mkdir -p "${out}/logs"
        embed_opts=(--train_config "${exp}/config.yaml" --model_file "${model_file}" --data_dir "${dumpdir}/raw/${dset}"
            --output_dir "${out}" --device "${device}")
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
        mark_done "${out}/.done" "${made_from}"
    done
fi

if run_stage 8; then
    log "Stage 8: scoring into ${exp}/RESULTS.md${score_config:+ (${score_config})}"
    scored=()
    for dset in ${test_sets}; do scored+=("${dset}" "${exp}/embed/${dset}/.done" "${dumpdir}/raw/${dset}"/utt2* "${dumpdir}/raw/${dset}"/*.classes); done
    set_model_id
    made_from=$(identity "${model_id}" "${scored[@]}" "${label_files}" "${score_config}" "${exp}/model_selection.json")
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
    pack_opts=(--option "${token_dir}/tokens.txt")
    [ "${token_type}" = bpe ] && pack_opts+=(--option "${token_dir}/bpe.model")
    [ -f "${stats_dir}/train/feats_stats.npz" ] && pack_opts+=(--option "${stats_dir}/train/feats_stats.npz")
    [ -f "${exp}/RESULTS.md" ] && pack_opts+=(--option "${exp}/RESULTS.md")
    set_model_id
    made_from=$(identity "${model_id}" "${pack_opts[@]}")
    if ! done_or_mark "${exp}/.pack.done" "stage 9" "${made_from}"; then
        ${python} -m espnet2_slap.bin.slap_pack --train_config "${exp}/config.yaml" \
            --model_file "${model_file}" "${pack_opts[@]}" --outpath "${exp}/packed_model.zip"
        mark_done "${exp}/.pack.done" "${made_from}"
    fi
fi
last_stage=$(( stop_stage < 9 ? stop_stage : 9 ))
log "Finished stages ${stage}-${last_stage} of ${exp}: ran ${ran[*]:-nothing}; already done before: ${already[*]:-nothing}"
