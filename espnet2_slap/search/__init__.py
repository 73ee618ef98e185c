"""Search of a music collection by text or by audio: an index of the tracks' embeddings with a trained or packed
model, made incrementally and resumably (``slap_index``), and exact top-k search over it (``slap_search``):

    tracks.py   the tracks of a directory tree (audio files by extension) or of a wav.scp, with their path, size
                and time of change
    model.py    the index's model (a packed zip, or a config and weights) and its identity (weights SHA-256)
    index.py    ``build_index`` (incremental, resumable after a kill) and ``SearchIndex`` (open, search by text,
                audio or vector; the tiled exact top-k of ``metrics/topk.py``)
    serve.py    ``slap_search --serve``: a local web page (standard-library HTTP server, 127.0.0.1 by default) to
                try text queries, with the ranked tracks' audio served by index row

    from espnet2_slap.search.index import SearchIndex
    index = SearchIndex.open("exp/my_index")
    model = index.load_model()
    for hit in index.search_text(model, "a calm piano piece", k=10):
        print(hit.rank, hit.score, hit.id, hit.path)
"""
