"""Packed models: the zips stage 9 (``slap_pack``, ESPnet's packer) writes."""

from pathlib import Path
from typing import Tuple, Union


def unpack_model(packed_model: Union[str, Path], out_dir: Union[str, Path]) -> Tuple[Path, Path]:
    """(config.yaml, model file) of a zip that stage 9 (``slap_pack``) packed, unpacked into ``out_dir`` (the
    config's paths rewritten there, by ESPnet's ``unpack``)."""
    from espnet2.main_funcs.pack_funcs import unpack

    files = unpack(str(packed_model), str(Path(out_dir).resolve()))
    return Path(files["slap_train_config"]), Path(files["slap_model_file"])
