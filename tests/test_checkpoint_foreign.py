"""Files that reference classes of packages we do not have (Lightning < 1.5: callbacks keyed by class, an
AttributeDict of hyper-parameters) are read without importing or calling anything; files that call code are
refused, across pickle protocols and torch's two formats, through stand-ins too; ESPnet's --init_param reads
through the same reader."""

import builtins
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict

import pytest
import torch
from conftest import tiny_args, tiny_model

from espnet2_slap.checkpoints import init_param as init_param_module
from espnet2_slap.checkpoints.init_param import load_init_param
from espnet2_slap.checkpoints.layouts import read_layout
from espnet2_slap.checkpoints.reader import (
    ALLOWED_GLOBALS,
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    UnsafeCheckpointError,
    read_checkpoint,
)
from espnet2_slap.encoders.htsat_audio_encoder import HTSATAudioEncoder
from espnet2_slap.tasks.slap import SLAPTask

HTSAT = dict(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
MODEL_CHECKPOINT = "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"
ATTRIBUTE_DICT = "pytorch_lightning.utilities.parsing.AttributeDict"

# A stand-in for pytorch_lightning 1.4 with the two classes its checkpoints reference, written for this test. Its
# modules say so when imported (the reader must never import them, nor the real package).
STAND_IN_PACKAGE = {
    "__init__.py": "__version__ = '1.4.9'\nSTAND_IN = True\n",
    "callbacks/__init__.py": "",
    "callbacks/base.py": "class Callback:\n    pass\n",
    "callbacks/model_checkpoint.py": textwrap.dedent("""\
        from pytorch_lightning.callbacks.base import Callback


        class ModelCheckpoint(Callback):
            def __init__(self, monitor=None):
                self.monitor = monitor
        """),
    "utilities/__init__.py": "",
    "utilities/parsing.py": textwrap.dedent("""\
        class AttributeDict(dict):
            # hyper-parameters read as attributes; attributes set are items (no __dict__ state to pickle)
            def __getattr__(self, key):
                try:
                    return self[key]
                except KeyError as e:
                    raise AttributeError(key) from e

            def __setattr__(self, key, value):
                self[key] = value
        """),
}

# Run with only the stand-in importable as pytorch_lightning: writes the checkpoint as Lightning 1.4's
# dump_checkpoint lays it out (callbacks keyed by class, since 1.5 by a string state_key).
SAVE_AS_LIGHTNING_1_4 = textwrap.dedent("""\
    import argparse, sys
    import torch
    import pytorch_lightning
    from pytorch_lightning.callbacks.model_checkpoint import ModelCheckpoint
    from pytorch_lightning.utilities.parsing import AttributeDict

    assert pytorch_lightning.STAND_IN, pytorch_lightning.__file__
    weights = torch.load(sys.argv[1], weights_only=True)
    hparams = AttributeDict(lr=1e-3, sample_rate=32000)
    hparams.args = argparse.Namespace(batch_size=32, classes=527)  # an object with attributes: NEWOBJ and BUILD
    checkpoint = {
        "epoch": 40,
        "global_step": 123456,
        "pytorch-lightning_version": pytorch_lightning.__version__,
        "state_dict": weights,
        "callbacks": {
            ModelCheckpoint: {
                "monitor": "mAP",
                "best_model_score": torch.tensor(0.47),
                "best_model_path": "/exp/l-epoch=40.ckpt",
                "current_score": torch.tensor(0.45),
                "dirpath": "/exp",
            }
        },
        "optimizer_states": [{"state": {0: {"step": 3, "exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 1e-3}]}],
        "lr_schedulers": [{"base_lrs": [1e-3], "last_epoch": 40, "_step_count": 41}],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }
    torch.save(checkpoint, sys.argv[2])
    """)


def random_weights(module: torch.nn.Module, seed: int) -> "OrderedDict[str, torch.Tensor]":
    g = torch.Generator().manual_seed(seed)
    return OrderedDict(
        (k, torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else v.clone())
        for k, v in module.state_dict().items()
    )


@pytest.fixture(scope="module")
def lightning_1_4(tmp_path_factory):
    """(path, HTS-AT weights): an HTS-AT .ckpt as Lightning 1.4 saves it, written by a process that has the
    stand-in package; this one never has it."""
    tmp = tmp_path_factory.mktemp("lightning_1_4")
    for name, text in STAND_IN_PACKAGE.items():
        (tmp / "site" / "pytorch_lightning" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "site" / "pytorch_lightning" / name).write_text(text)
    weights = random_weights(HTSATAudioEncoder(**HTSAT), 1)
    torch.save(OrderedDict((f"sed_model.{k}", v) for k, v in weights.items()), tmp / "weights.pt")
    path = tmp / "HTSAT_AudioSet_Saved_1.ckpt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp / "site"), os.environ.get("PYTHONPATH", "")]))
    subprocess.run(
        [sys.executable, "-c", SAVE_AS_LIGHTNING_1_4, str(tmp / "weights.pt"), str(path)],
        cwd=tmp,
        env=env,
        check=True,
        capture_output=True,
    )
    return path, weights


def test_lightning_1_4_checkpoint_is_read_without_importing_or_calling_its_classes(lightning_1_4, monkeypatch, caplog):
    path, weights = lightning_1_4
    with pytest.raises(pickle.UnpicklingError, match=MODEL_CHECKPOINT):
        torch.load(path, weights_only=True)  # what a user of torch.load gets
    real_import = builtins.__import__

    def no_lightning(name, *args, **kwargs):
        assert not name.startswith("pytorch_lightning"), f"the reader imported {name}"
        return real_import(name, *args, **kwargs)

    modules = set(sys.modules)
    monkeypatch.setattr(builtins, "__import__", no_lightning)
    caplog.set_level(logging.INFO)
    content = read_checkpoint(path)
    monkeypatch.undo()
    assert not [m for m in set(sys.modules) - modules if "lightning" in m]

    assert list(content["state_dict"]) == [f"sed_model.{k}" for k in weights]
    assert all(torch.equal(content["state_dict"][f"sed_model.{k}"], v) for k, v in weights.items())
    assert content["pytorch-lightning_version"] == "1.4.9" and content["global_step"] == 123456
    callbacks = content["callbacks"]
    assert list(callbacks) == [MODEL_CHECKPOINT]  # the class key, read as its name
    assert callbacks[MODEL_CHECKPOINT]["best_model_score"].item() == pytest.approx(0.47)
    hyper = content["hyper_parameters"]
    assert hyper == {"lr": 1e-3, "sample_rate": 32000, "args": {"batch_size": 32, "classes": 527}}
    assert type(hyper) is dict and type(hyper["args"]) is dict
    assert torch.equal(content["optimizer_states"][0]["state"][0]["exp_avg"], torch.ones(2))
    assert (
        f"checkpoint {path}: read past references to 3 globals off the allow-list, none called (classes read as "
        f"their names, their instances as dicts): argparse.Namespace, {MODEL_CHECKPOINT}, {ATTRIBUTE_DICT}"
    ) in caplog.text

    layout = read_layout(str(path))
    assert layout.name == "HTS-AT Lightning checkpoint (sed_model.*)"
    assert set(layout.parts["audio_encoder"]) == set(weights)
    assert all(torch.equal(layout.parts["audio_encoder"][k], v) for k, v in weights.items())


class Hyper(dict):
    """A dict subclass of a module the reader does not allow (this one), like Lightning's AttributeDict."""


class Config:
    """A plain class instance with attributes (NEWOBJ or copyreg._reconstructor, then BUILD)."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


@pytest.mark.parametrize("protocol", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_referenced_classes_read_in_every_protocol_and_format(tmp_path, protocol, zipped):
    """Protocol 1 makes instances with copyreg._reconstructor, 2 to 5 with NEWOBJ."""
    path = tmp_path / "ckpt.pt"
    content = {
        "state_dict": {"w": torch.arange(4.0)},
        "callbacks": {Config: {"score": torch.tensor(0.5)}},
        "hyper": Hyper(lr=0.1, config=Config(depth=3, names=["a"])),
    }
    torch.save(content, path, pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    read = read_checkpoint(path)
    assert torch.equal(read["state_dict"]["w"], torch.arange(4.0))
    assert list(read["callbacks"]) == [f"{__name__}.Config"]
    assert read["hyper"] == {"lr": 0.1, "config": {"depth": 3, "names": ["a"]}}


# ---------------------------------------------------------------- files that would run code


class Reduces:
    """Pickles as a call of ``function`` on ``args``: what unpickling it would run."""

    def __init__(self, function, args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args

    def __call__(self, *args):  # the pickler requires the callable of a reduce to be callable
        raise AssertionError("not to be called here")


def hostile(marker) -> dict:
    """Payloads, each creating ``marker`` if run, and the global whose call the refusal names."""
    code = f"open({str(marker)!r}, 'w').close()"
    import_os = Reduces(__import__, ("os",))
    return {
        "os.system": (Reduces(os.system, (f"touch {marker}",)), "posix.system" if os.name == "posix" else "nt.system"),
        "exec": (Reduces(exec, (code,)), "builtins.exec"),
        "eval": (Reduces(eval, (code,)), "builtins.eval"),
        "getattr+__import__": (
            Reduces(Reduces(getattr, (import_os, "system")), (f"touch {marker}",)),
            "builtins.__import__",  # the first call the file makes
        ),
        "subprocess.Popen": (Reduces(subprocess.Popen, (["touch", str(marker)],)), "subprocess.Popen"),
    }


@pytest.mark.parametrize("payload", list(hostile("x")))
@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_file_calling_code_is_refused_in_every_protocol_and_format(tmp_path, payload, protocol, zipped):
    marker = tmp_path / "the_payload_ran"
    obj, called = hostile(marker)[payload]
    path = tmp_path / "evil.ckpt"
    # the payload before the tensors: torch's protocol-0 storages cannot be read (torch.load refuses them too)
    torch.save(
        {"payload": obj, "state_dict": {"w": torch.zeros(2)}},
        path,
        pickle_protocol=protocol,
        _use_new_zipfile_serialization=zipped,
    )
    with pytest.raises(UnsafeCheckpointError, match=rf"{path}: refused to load: the file calls the global {called};"):
        read_checkpoint(path)
    assert not marker.exists()


def test_the_refusal_says_what_to_do(tmp_path):
    """A class of some package: re-save it where that package is; a part of Python: the file is hostile."""
    path = tmp_path / "calls.pt"
    torch.save({"hyper": Reduces(Hyper, ({"lr": 0.1},))}, path)
    with pytest.raises(UnsafeCheckpointError, match=f"calls the global {__name__}.Hyper") as refusal:
        read_checkpoint(path)
    assert f"load it with torch.load where {__name__} is installed and re-save its weights" in str(refusal.value)
    assert "torch.save(checkpoint['state_dict'], 'weights.pt'), or as .safetensors" in str(refusal.value)
    torch.save({"payload": Reduces(subprocess.Popen, (["true"],))}, path)
    with pytest.raises(UnsafeCheckpointError, match="subprocess is part of Python: no checkpoint needs to call it"):
        read_checkpoint(path)


# ---------------------------------------------------------------- attacks through the stand-ins


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def write_legacy(path, body: bytes, protocol: int = 2):
    """A legacy torch file whose object pickle is ``body`` (opcodes, STOP appended), with no storages."""
    with open(path, "wb") as f:
        for value in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"protocol_version": LEGACY_PROTOCOL_VERSION}):
            pickle.dump(value, f, protocol=2)
        f.write(b"\x80" + bytes([protocol]) + body + b".")
        pickle.dump([], f, protocol=2)
    return path


def command(marker) -> bytes:
    return text(f"touch {marker}")


EMPTY_TUPLE, EMPTY_DICT, MARK = b")", b"}", b"("


def attacks(marker) -> dict:
    """Pickles that try to run ``touch marker`` through stand-ins: name -> (opcodes, protocol, expected)."""
    system = glob("os", "system")

    def plant_setstate(instance: bytes) -> bytes:
        """``instance``, then BUILD with {"__setstate__": os.system}, then BUILD with the command."""
        return instance + EMPTY_DICT + text("__setstate__") + system + b"sb" + command(marker) + b"b"

    return {
        # BUILD plants __setstate__ in the instance, a second BUILD would call it (the classic gadget): the
        # instance has no __dict__ and its own __setstate__ keeps the state
        "BUILD __setstate__ into an instance": (
            plant_setstate(glob("foreign", "Klass") + EMPTY_TUPLE + b"\x81"),
            2,
            {"__state__": f"touch {marker}"},
        ),
        # the same on an OrderedDict (which has a __dict__): the planted __setstate__ is a stand-in, whose call
        # is refused
        "BUILD __setstate__ into an OrderedDict": (
            plant_setstate(glob("collections", "OrderedDict") + EMPTY_TUPLE + b"R"),
            2,
            UnsafeCheckpointError,
        ),
        # BUILD on the stand-in class itself: it finds the instances' __setstate__, which needs an instance (and
        # setattr on the class would be refused)
        "BUILD slot state on a stand-in class": (
            system + MARK + b"N" + EMPTY_DICT + text("__call__") + glob("builtins", "eval") + b"stb",
            2,
            TypeError,
        ),
        # a stand-in as the function an allowed function calls
        "a stand-in called by an allowed function": (
            glob("torch._tensor", "_rebuild_from_type_v2")
            + MARK
            + system
            + glob("torch", "Tensor")
            + MARK
            + command(marker)
            + b"t"
            + EMPTY_DICT
            + b"tR",
            2,
            UnsafeCheckpointError,
        ),
        # a stand-in instance as the argument of an allowed class: read as its items
        "an instance as the argument of OrderedDict": (
            glob("collections", "OrderedDict")
            + glob("foreign", "Klass")
            + EMPTY_TUPLE
            + b"\x81"
            + MARK
            + text("a")
            + b"K\x01u\x85R",
            2,
            {"a": 1},
        ),
        # a stand-in class as the argument of an allowed class: not iterable
        "a stand-in class as the argument of OrderedDict": (
            glob("collections", "OrderedDict") + system + b"\x85R",
            2,
            TypeError,
        ),
        # NEWOBJ_EX with keyword arguments: kept, not passed to anything
        "NEWOBJ_EX with keyword arguments": (
            system + EMPTY_TUPLE + EMPTY_DICT + text("command") + command(marker) + b"s\x92",
            4,
            {"__kwargs__": {"command": f"touch {marker}"}},
        ),
        # INST and OBJ with arguments call the class
        "INST with arguments": (MARK + command(marker) + b"ios\nsystem\n", 0, UnsafeCheckpointError),
        "OBJ with arguments": (MARK + system + command(marker) + b"o", 1, UnsafeCheckpointError),
        # INST without arguments makes an instance without calling it
        "INST without arguments": (MARK + b"ios\nsystem\n", 0, {}),
        # copyreg._reconstructor of an allowed class, or of another base, is refused
        "copyreg._reconstructor of an allowed class": (
            glob("copy_reg", "_reconstructor")
            + MARK
            + glob("collections", "OrderedDict")
            + glob("__builtin__", "dict")
            + EMPTY_DICT
            + b"tR",
            1,
            pickle.UnpicklingError,
        ),
        "copyreg._reconstructor with another base": (
            glob("copy_reg", "_reconstructor") + MARK + system + glob("__builtin__", "list") + b"]tR",
            1,
            pickle.UnpicklingError,
        ),
    }


@pytest.mark.parametrize("attack", list(attacks("x")))
def test_attacks_through_stand_ins_run_nothing(tmp_path, attack):
    marker = tmp_path / "the_payload_ran"
    body, protocol, expected = attacks(marker)[attack]
    path = write_legacy(tmp_path / "attack.pt", body, protocol)
    if isinstance(expected, dict):
        assert read_checkpoint(path) == expected
    else:
        with pytest.raises(expected):
            read_checkpoint(path)
    assert not marker.exists()


def test_build_cannot_change_an_allowed_function(tmp_path):
    """BUILD with slot state on an allowed function (a plain function would take __defaults__ for every later
    load) is refused, and the function is unchanged."""
    encode = ALLOWED_GLOBALS[("_codecs", "encode")]
    body = glob("_codecs", "encode") + MARK + b"N" + EMPTY_DICT + text("__defaults__") + b"(K\x01tstb"
    with pytest.raises(pickle.UnpicklingError, match="sets __defaults__"):
        read_checkpoint(write_legacy(tmp_path / "attack.pt", body))
    assert encode.function.__defaults__ is None


def test_a_name_never_makes_torch_import_anything(tmp_path):
    """torch imports some submodules on first attribute access; a file naming one gets a stand-in."""
    imported = "torch._inductor" in sys.modules
    path = write_legacy(tmp_path / "lazy.pt", glob("torch", "_inductor"))
    assert read_checkpoint(path) == "torch._inductor"
    assert imported or "torch._inductor" not in sys.modules


def test_a_swallowed_refusal_still_refuses(tmp_path, monkeypatch):
    """A call of a stand-in refuses the file even if something of it caught the refusal."""
    from espnet2_slap.checkpoints import reader as checkpoint_reader

    def catches(function, *args):
        try:
            function(*args)
        except Exception:
            pass
        return "caught"

    monkeypatch.setitem(ALLOWED_GLOBALS, ("test", "catches"), checkpoint_reader.AllowedFunction(catches))
    body = glob("test", "catches") + MARK + glob("os", "system") + text("true") + b"tR"
    with pytest.raises(UnsafeCheckpointError, match="calls the global os.system"):
        read_checkpoint(write_legacy(tmp_path / "caught.pt", body))


# ---------------------------------------------------------------- ESPnet's --init_param


class Stop(Exception):
    """Ends main_worker after --init_param is loaded (ESPnet's next step builds the data iterators)."""


def run_main_worker_to_init_param(tmp_path, monkeypatch, init_param: str):
    """ESPnet's training (SLAPTask.main, as slap_train runs it) for the tiny CLAP config up to and with step 6 of
    its main_worker (--init_param); returns (model, its state when built)."""
    built = {}
    build_model = SLAPTask.build_model

    def keep(cls, args):
        built["model"] = build_model(args)
        built["initial"] = {k: v.clone() for k, v in built["model"].state_dict().items()}
        return built["model"]

    def stop(cls, *args, **kwargs):
        raise Stop

    monkeypatch.setattr(SLAPTask, "build_model", classmethod(keep))
    monkeypatch.setattr(SLAPTask, "build_iter_factory", classmethod(stop))
    args = tiny_args(tmp_path, "clap", "--init_param", init_param)
    with pytest.raises(Stop):
        SLAPTask.main(args=args)
    return built["model"], built["initial"]


def test_init_param_with_src_dst_and_exclude_keys_initialises_the_model(tmp_path, monkeypatch):
    (tmp_path / "source").mkdir()
    _, source = tiny_model(tmp_path / "source", "clap")
    state = {k: v + 1.0 if v.is_floating_point() else v for k, v in source.state_dict().items()}
    path = tmp_path / "source" / "valid.acc.best.pth"
    torch.save(state, path)
    model, initial = run_main_worker_to_init_param(
        tmp_path, monkeypatch, f"{path}:text_tower:text_tower:text_tower.projector"
    )
    own = model.state_dict()
    loaded = [k for k in own if k.startswith("text_tower.encoder.")]
    assert loaded and all(torch.equal(own[k], state[k]) for k in loaded)
    kept = [k for k in own if not k.startswith("text_tower.encoder.")]  # excluded (projector) or not under src
    assert any(k.startswith("text_tower.projector.") for k in kept)
    assert all(torch.equal(own[k], initial[k]) for k in kept)
    assert init_param_module.abs_task.load_pretrained_model is not load_init_param  # put back


def test_init_param_that_would_run_a_command_is_refused_in_training(tmp_path, monkeypatch):
    marker = tmp_path / "the_command_ran"
    path = tmp_path / "evil.pth"
    torch.save({"payload": Reduces(os.system, (f"touch {marker}",)), "w": torch.zeros(2)}, path)
    with pytest.raises(UnsafeCheckpointError, match=rf"{path}: refused to load: the file calls the global"):
        run_main_worker_to_init_param(tmp_path, monkeypatch, f"{path}:text_tower:text_tower")
    assert not marker.exists()
    assert init_param_module.abs_task.load_pretrained_model is not load_init_param  # put back


def test_load_init_param_keeps_espnets_semantics(tmp_path, caplog):
    def net():
        return torch.nn.Sequential(OrderedDict(enc=torch.nn.Linear(2, 3), dec=torch.nn.Linear(3, 2)))

    model = net()
    bias = model.enc.bias.clone()
    ones = {"encoder.weight": torch.ones(3, 2), "encoder.bias": torch.ones(3), "encoderx.weight": torch.zeros(3, 2)}
    path = tmp_path / "deepspeed.pt"
    torch.save({"module": ones}, path)  # a DeepSpeed file: the state under "module"
    load_init_param(f"{path}:encoder:enc:encoder.bias", model, ignore_init_mismatch=False)
    assert torch.equal(model.enc.weight, torch.ones(3, 2))  # src_key "encoder" up to a dot: not encoderx
    assert torch.equal(model.enc.bias, bias)  # excluded

    model = net()
    torch.save({"enc.weight": torch.ones(3, 2), "enc.bias": torch.ones(4), "dec.bias": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_init_param(str(path), model, ignore_init_mismatch=False)
    caplog.set_level(logging.WARNING)
    bias = model.enc.bias.clone()
    load_init_param(f"{path}:::", model, ignore_init_mismatch=True)  # empty keys and excludes: the whole file
    assert "Filter out enc.bias" in caplog.text and torch.equal(model.enc.bias, bias)
    assert torch.equal(model.enc.weight, torch.ones(3, 2)) and torch.equal(model.dec.bias, torch.ones(2))


def test_espnet_still_loads_init_param_through_the_name_we_replace():
    """If ESPnet's main_worker stops calling abs_task.load_pretrained_model, --init_param must fail, not fall
    back to torch.load."""
    assert init_param_module.espnet_loads_through_its_name()
    with init_param_module.safe_init_param(["x.pth"]):
        assert init_param_module.abs_task.load_pretrained_model is load_init_param


def test_init_param_refused_when_espnet_no_longer_calls_that_name(monkeypatch):
    monkeypatch.setattr(init_param_module, "espnet_loads_through_its_name", lambda: False)
    with pytest.raises(RuntimeError, match="no longer loads --init_param"):
        with init_param_module.safe_init_param(["x.pth"]):
            pass
    with init_param_module.safe_init_param([]):  # without --init_param, training goes on
        pass


# ---------------------------------------------------------------- storages larger than the file


def forged_count(path, zipped: bool, count: int = 2**60):
    """A 1000-element tensor saved with torch.save, whose element count (in the pickle, and in the legacy format's
    storage header too) is then made ``count``: a file that would have the reader ask for that much memory."""
    torch.save({"w": torch.zeros(1000)}, path, pickle_protocol=2, _use_new_zipfile_serialization=zipped)
    real, forged = b"M\xe8\x03", b"\x8a\x08" + count.to_bytes(8, "little")  # BININT2 1000 -> LONG1 count
    if not zipped:
        data = path.read_bytes().replace(real, forged)
        path.write_bytes(data.replace((1000).to_bytes(8, "little"), count.to_bytes(8, "little")))
        return path
    with zipfile.ZipFile(path) as src:
        records = {info.filename: src.read(info.filename) for info in src.infolist()}
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in records.items():
            dst.writestr(name, data.replace(real, forged) if name.endswith("data.pkl") else data)
    return path


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_storage_larger_than_the_file_is_refused_before_reading(tmp_path, zipped):
    with pytest.raises(ValueError, match=r"storage \d+ claims 1152921504606846976 elements .* holds 4000 bytes"):
        read_checkpoint(forged_count(tmp_path / "forged.pt", zipped))
