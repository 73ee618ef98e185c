#!/usr/bin/env python3
"""Search an index that slap_index made, by text or by audio: the top-k tracks with their cosine scores.

    python -m espnet2_slap.bin.slap_search exp/music_index --text "a calm piano piece" -k 5
    python -m espnet2_slap.bin.slap_search exp/music_index --audio query.wav --json

Each --text and --audio (both repeatable) is one query, embedded with the model the index records (or the one
given, which must have the same weights). The search is exact: the index's embeddings are read in tiles and the
top k of each tile merged (espnet2_slap/metrics/topk.py). Output: per query a line naming it, then one line a
hit: rank, score, id, path. With --json: {"index", "k", "queries": [{"text" or "audio", "results": [{"rank",
"id", "path", "score"}]}]} on stdout (logs go to stderr).

With --serve, a local web page to try text queries instead (espnet2_slap/search/serve.py): a text box, k, and the
ranked tracks with an audio player each; it binds 127.0.0.1 (--host, --port; --port 0 picks a free port) and logs
"serving INDEX on http://127.0.0.1:PORT/". On another address anyone who can reach the port can read the tracks.

    python -m espnet2_slap.bin.slap_search exp/music_index --serve --port 8000
"""

import argparse
import json
import sys
from pathlib import Path

from espnet2_slap.search.index import SearchIndex, answer_json, named_model
from espnet2_slap.search.serve import serve
from espnet2_slap.utils.cli import start_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("index", type=Path, help="an index directory (slap_index)")
    parser.add_argument("--text", action="append", default=[], help="a caption to search by (repeatable)")
    parser.add_argument("--audio", action="append", default=[], type=Path, help="an audio file to search by")
    parser.add_argument("-k", type=int, default=10, help="hits per query")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--model", type=Path, help="a packed model zip (default: the index's own model)")
    parser.add_argument("--train_config", type=Path, help="or a training's config.yaml, with --model_file")
    parser.add_argument("--model_file", type=Path, help="*.pth")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--serve", action="store_true", help="serve a web page to search from instead")
    parser.add_argument("--host", default="127.0.0.1", help="the address --serve binds (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="the port --serve binds (0: a free one)")
    return parser


def main(cmd=None):
    start_logging("espnet2_slap.bin.slap_search", cmd)
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.serve and (args.text or args.audio or args.json):
        parser.error("--serve takes its queries from the page: no --text, --audio or --json with it")
    if not args.text and not args.audio and not args.serve:
        parser.error("give a query: --text CAPTION or --audio FILE (or --serve)")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be from 0 to 65535")
    if (args.train_config is None) != (args.model_file is None) or (args.model and args.model_file):
        parser.error("give --model ZIP, or --train_config and --model_file, or neither (the index's model)")
    if args.k < 1:
        parser.error("-k must be at least 1")
    try:
        index = SearchIndex.open(args.index)
        model = named_model(args.index, args.model, args.train_config, args.model_file, args.device)
        model = model or index.load_model(args.device)
        if args.serve:
            return serve(index, model, args.host, args.port)
        queries = [({"text": text}, index.search_text(model, text, args.k)) for text in args.text]
        queries += [({"audio": str(audio)}, index.search_audio(model, str(audio), args.k)) for audio in args.audio]
    except (ValueError, OSError) as e:  # OSError: --serve's address cannot be bound (in use, not this machine's)
        sys.exit(f"slap_search: {e}")
    if args.json:
        print(json.dumps(answer_json(args.index, args.k, queries), indent=2, ensure_ascii=False))
        return
    for query, hits in queries:
        what, value = next(iter(query.items()))
        print(f"{what}: {value}")
        for hit in hits:
            print(f"{hit.rank:4d}  {hit.score:.4f}  {hit.id}\t{hit.path}")


if __name__ == "__main__":
    main()
