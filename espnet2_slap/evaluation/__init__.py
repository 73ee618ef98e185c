"""Evaluation of trained models, the flow of stages 7 and 8 (and of ``slap_embed`` / ``slap_score`` /
``slap_results``, which are thin command lines over it):

    embed.py      a data dir -> embedding files (<modality>_<kind>.npy/.ids, Kaldi ark), in resumable chunks,
                  shardable over jobs; prompt embeddings (ids <prompt_index>:<class>)
    identity.py   what made a set of embeddings (model, config, data hashes), checked before scoring
    readers.py    the readers of embeddings, ids, caption maps, class lists and label files (single, multi-label,
                  masked), into the arrays the scorers take; each embedding file read once a test set
    prompt_embeddings.py  the paper's prompts (espnet2_slap/prompts.py) embedded with a model or read from a file
    scorers.py    one scorer per task, over arrays: retrieval, zero-shot (single-label, multi-label, masked),
                  modality gap, probe
    plan.py       what stage 8 scores (conf/score.yaml or options)
    report.py     RESULTS.md / results.json, and the JSON + Markdown of one scorer
    compare.py    many experiments' results.json grouped by seed, with mean and spread (slap_compare; the sweeps)
    compare_report.py  the comparison as compare.md (one table), compare.png (one plot) and compare.json
"""
