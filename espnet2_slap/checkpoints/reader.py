"""The one reader of checkpoint files: tensors and plain values out, no code from the file ever run.

``torch.load(weights_only=True)`` refuses the files users download: the LAION-CLAP releases are pickled with
protocol 4 (its FRAME opcode is unsupported there) and hold numpy scalars. ``weights_only=False`` would run any
code the file names. This reader instead unpickles with Python's own unpickler, restricted to an allow-list of
globals (Python's documented "restricting globals" pattern), and rebuilds tensors itself from the raw storage
bytes, for both of torch's file formats:

- zip (torch.save since 1.6; Lightning ``.ckpt``): ``<prefix>/data.pkl`` and one record per storage,
  ``<prefix>/data/<key>``;
- legacy (``_use_new_zipfile_serialization=False``): pickles of the magic number, the protocol version and the
  system info, the object, the list of storage keys, then per storage its element count (int64) and bytes.

Allowed: tensors and parameters (as plain tensors), torch dtypes and storage types, ``dict``, ``OrderedDict``,
sets, numpy scalars (converted to Python numbers) and arrays (converted to tensors; object arrays to lists).
``.safetensors`` files are read with safetensors.

Any other global (``os.system``, a class of some package) is neither imported nor looked up: the unpickler gets
a stand-in for it (``ForeignGlobal``), which a file may only *reference*:

- as a value or a dict key, e.g. Lightning < 1.5 keys ``callbacks`` by the callback's class: read as its dotted
  name (``"pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"``);
- as the class of an instance made without calling it (NEWOBJ, NEWOBJ_EX, INST/OBJ without arguments,
  ``copyreg._reconstructor`` of protocols 0 and 1), e.g. Lightning's ``AttributeDict`` of hyper-parameters: a
  ``ForeignInstance``, which only keeps the items and state the file gives it (SETITEMS, BUILD) and is read as a
  plain dict of them.

*Calling* a stand-in (REDUCE, INST/OBJ with arguments, or an allowed function calling its argument) raises
``UnsafeCheckpointError`` naming the global and the file: that is how a file runs code (``os.system``, ``eval``,
``getattr`` of an ``__import__``). No object a file can reach lets it change the reader: stand-ins and the allowed
functions take no attributes, and BUILD on an instance goes to ``ForeignInstance.__setstate__``.
"""

import _compat_pickle
import logging
import pickle
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Tuple, Union

import numpy as np
import torch

PathLike = Union[str, Path]
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch's storage type names (persistent ids name them: torch.FloatStorage, ...) -> element dtype
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint calls a global off the allow-list, which would run code; nothing of it was executed."""


class ForeignGlobals:
    """The stand-ins for one file's globals off the allow-list: the names it referenced and those it called."""

    def __init__(self, source: str):
        self.source = source
        self.classes: Dict[str, "ForeignGlobal"] = {}
        self.called: List[str] = []

    def stand_in(self, module: str, name: str) -> "ForeignGlobal":
        dotted = f"{module}.{name}"
        if dotted not in self.classes:
            namespace = {"__slots__": (), "global_name": dotted, "globals_of_file": self}
            self.classes[dotted] = ForeignGlobal("ForeignGlobal", (ForeignInstance,), namespace)
        return self.classes[dotted]

    def refusal(self, dotted: str) -> UnsafeCheckpointError:
        package = dotted.split(".")[0]
        if package in sys.stdlib_module_names:
            what_to_do = (
                f"{package} is part of Python: no checkpoint needs to call it, so the file is most likely made to run "
                "a command; do not load it with torch.load either"
            )
        else:
            what_to_do = (
                f"If the file comes from a source you trust, load it with torch.load where {package} is installed "
                "and re-save its weights: torch.save(checkpoint['state_dict'], 'weights.pt'), or as .safetensors"
            )
        return UnsafeCheckpointError(
            f"{self.source}: refused to load: the file calls the global {dotted}; loading it would run code, so "
            "nothing of it was run. Files that only reference classes (such as Lightning's callbacks and "
            f"AttributeDict hyper-parameters) are read, files that call them are not. {what_to_do}"
        )


class ForeignGlobal(type):
    """The class of a stand-in: a type (NEWOBJ takes it) that refuses to be called and to take attributes."""

    def __call__(cls, *args, **kwargs):
        cls.globals_of_file.called.append(cls.global_name)
        raise cls.globals_of_file.refusal(cls.global_name)

    def __setattr__(cls, name, value):
        raise pickle.UnpicklingError(f"{cls.globals_of_file.source}: the file sets {name} of {cls.global_name}")

    def __delattr__(cls, name):
        raise pickle.UnpicklingError(f"{cls.globals_of_file.source}: the file deletes {name} of {cls.global_name}")

    def __repr__(cls) -> str:
        return f"<{cls.global_name}, not loaded>"


class ForeignInstance(dict):
    """An instance of a stand-in, made without calling anything of its class: a dict of the items the file gives
    it (SETITEMS) that keeps the arguments of its creation and the state of BUILD. Without a ``__dict__``, BUILD
    always goes to this ``__setstate__``, which only keeps the state."""

    __slots__ = ("new_args", "state")

    def __new__(cls, *args, **kwargs):
        obj = dict.__new__(cls)
        obj.new_args, obj.state = (args, kwargs), None
        return obj

    def __setstate__(self, state):
        self.state = state

    def content(self) -> Dict[Any, Any]:
        """Its items, then its state's attributes (a dict, or (dict, slots dict)); any other state as
        ``__state__``, the arguments of its creation as ``__args__`` and ``__kwargs__``."""
        content = dict(self)
        state, (args, kwargs) = self.state, self.new_args
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        if all(part is None or isinstance(part, dict) for part in parts):
            for part in parts:
                content.update(part or {})
        else:
            content["__state__"] = state
        if args:
            content["__args__"] = list(args)
        if kwargs:
            content["__kwargs__"] = kwargs
        return content


class AllowedFunction:
    """A function the file may call, with no attribute it could set (BUILD on a plain function sets its
    attributes, ``__defaults__`` included, for every later load)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable):
        object.__setattr__(self, "function", function)

    def __call__(self, *args):
        return self.function(*args)

    def __setattr__(self, name, value):
        raise pickle.UnpicklingError(f"the file sets {name} of {self.function.__name__}")

    def __repr__(self) -> str:
        return f"<allowed {self.function.__name__}>"


class StorageRef(NamedTuple):
    """A storage of the file, read once all of the pickle is known (legacy files keep the bytes after it)."""

    key: str
    dtype: torch.dtype
    numel: int


class TensorRef(NamedTuple):
    """A tensor to be cut out of a storage once the storages are read."""

    storage: StorageRef
    offset: int
    size: Tuple[int, ...]
    stride: Tuple[int, ...]


def rebuild_tensor(storage, storage_offset, size, stride, *unused) -> TensorRef:
    """Stands for torch._utils._rebuild_tensor(_v2): requires_grad, hooks and metadata are dropped."""
    if not isinstance(storage, StorageRef):
        raise pickle.UnpicklingError(f"a tensor without a storage of the file ({type(storage).__name__})")
    return TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def rebuild_parameter(data, *unused):
    """Stands for torch._utils._rebuild_parameter(_with_state): a parameter is read as its tensor."""
    return data


def rebuild_from_type(func, new_type, args, state):
    """Stands for torch._tensor._rebuild_from_type_v2, allowed for plain tensors and parameters only."""
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise pickle.UnpicklingError(f"a tensor of class {new_type} (only plain tensors and parameters are read)")
    return func(*args)


def latin1_bytes(text: str, encoding: str) -> bytes:
    """Stands for _codecs.encode, which protocol 2 uses to store bytes (as latin-1 text)."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} (only latin1 stores bytes)")
    return text.encode("latin1")


def numpy_array(subtype, shape, dtype):
    """Stands for numpy's array reconstructor, for plain ndarrays only (not subclasses)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"a numpy array of class {subtype} (only numpy.ndarray is read)")
    return np._core.multiarray._reconstruct(np.ndarray, shape, dtype)


def numpy_scalar(dtype, data=None):
    """Stands for numpy's scalar reconstructor; the dtype of an object scalar is refused."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"a numpy scalar of dtype {dtype} (only numeric ones are read)")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def numpy_array_from_buffer(buffer, dtype, shape, order):
    """Stands for numpy's protocol-5 array reconstructor (an in-band buffer), numeric dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"a numpy array of dtype {dtype} from a buffer (only numeric ones are read)")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def reconstructor(cls, base, state):
    """Stands for copyreg._reconstructor, which protocols 0 and 1 use to make an instance of a class: for a class
    off the allow-list of base object or dict only, made without calling anything of it."""
    if not isinstance(cls, ForeignGlobal) or base not in (object, dict):
        raise pickle.UnpicklingError(
            f"copyreg._reconstructor of {cls!r} with base {base!r} (only instances of classes off the allow-list, "
            "of base object or dict, are read)"
        )
    obj = ForeignInstance.__new__(cls)
    if base is dict and state is not None:
        dict.update(obj, dict(state))
    return obj


NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
# Classes here are built-in types or torch.Tensor/Parameter (whose __setstate__ takes an instance): no BUILD can
# change them. Functions are AllowedFunction: none takes attributes.
ALLOWED_GLOBALS: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "dict"): dict,
    ("builtins", "object"): object,  # the base of copyreg._reconstructor
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("torch", "Size"): tuple,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{("torch", name): dtype for name, dtype in STORAGE_DTYPES.items()},
    **{
        key: AllowedFunction(function)
        for key, function in {
            ("_codecs", "encode"): latin1_bytes,
            ("copyreg", "_reconstructor"): reconstructor,
            ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
            ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
            **{(module, "_reconstruct"): numpy_array for module in NUMPY_MODULES},
            **{(module, "scalar"): numpy_scalar for module in NUMPY_MODULES},
            **{
                (module, "_frombuffer"): numpy_array_from_buffer
                for module in ("numpy.core.numeric", "numpy._core.numeric")
            },
        }.items()
    },
}


def python3_name(module: str, name: str) -> Tuple[str, str]:
    """A global as Python's unpickler reads it from protocols 0 to 2 (its fix_imports): Python 3's pickler writes
    those names as Python 2 had them (``__builtin__.exec``, ``copy_reg._reconstructor``, ``commands.Popen``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def allowed_global(module: str, name: str) -> Any:
    """The object a pickle may name, or None: the allow-list, torch dtypes (torch.float32, ...) and numpy's
    dtype classes (numpy.dtypes.Float64DType, ...). Only looked up in the modules' namespaces: a name never makes
    torch or numpy import anything."""
    if (module, name) in ALLOWED_GLOBALS:
        return ALLOWED_GLOBALS[(module, name)]
    if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):
        return vars(torch)[name]
    if module == "numpy.dtypes" and name.endswith("DType"):
        cls = vars(np.dtypes).get(name)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            return cls
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Python's unpickler (every protocol) whose globals are ``allowed_global`` or stand-ins of ``foreign``;
    storages become StorageRef and tensors TensorRef."""

    def __init__(self, file, source: str, storage_types: Dict[str, torch.dtype], foreign: ForeignGlobals):
        super().__init__(file, encoding="latin1")
        self.source = source
        self.storages: Dict[str, StorageRef] = {}
        self.storage_types = storage_types
        self.foreign = foreign
        head = file.peek(2)[:2] if hasattr(file, "peek") else b""  # PROTO and its number, from protocol 2 on
        self.python2_names = not (len(head) == 2 and head[0] == pickle.PROTO[0] and head[1] >= 3)

    def find_class(self, module: str, name: str) -> Any:
        if self.python2_names:
            module, name = python3_name(module, name)
        found = allowed_global(module, name)
        return self.foreign.stand_in(module, name) if found is None else found

    def load(self) -> Any:
        obj = super().load()
        if self.foreign.called:  # a call refused, where something of the file caught the refusal
            raise self.foreign.refusal(self.foreign.called[0])
        return obj

    def persistent_load(self, pid) -> StorageRef:
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise UnsafeCheckpointError(f"{self.source}: refused to load a pickled {kind!r} (not a tensor storage)")
        dtype, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise ValueError(f"{self.source}: storage views of torch < 1.0 files are not supported")
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"{self.source}: storage {key} of unknown type {dtype}")
        return self.storages.setdefault(key, StorageRef(key, dtype, numel))


def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def storage_bytes(ref: StorageRef, available: int, source: str) -> int:
    """The size in bytes of a storage, checked against the ``available`` bytes the file holds for it before any
    is read: a file that claims more (a pickle can name any element count) is refused instead of making the reader
    ask for that much memory."""
    nbytes = ref.numel * element_size(ref.dtype)
    if nbytes > available:
        raise ValueError(
            f"{source}: storage {ref.key} claims {ref.numel} elements ({nbytes} bytes) but the file holds "
            f"{available} bytes for it: a damaged or forged checkpoint"
        )
    return nbytes


def storage_tensor(data: bytes, ref: StorageRef, source: str) -> torch.Tensor:
    """The bytes of a storage as a 1-D tensor of its dtype."""
    nbytes = ref.numel * element_size(ref.dtype)
    if len(data) < nbytes:
        raise ValueError(f"{source}: storage {ref.key} is truncated ({len(data)} of {nbytes} bytes)")
    if nbytes == 0:
        return torch.empty(0, dtype=ref.dtype)
    return torch.frombuffer(bytearray(data[:nbytes]), dtype=ref.dtype)


def materialise(obj: Any, storage: Callable[[StorageRef], torch.Tensor]) -> Any:
    """Replaces TensorRefs by tensors, numpy values by tensors and Python numbers, stand-ins by their dotted names
    and their instances by plain dicts, in plain containers."""
    if isinstance(obj, TensorRef):
        return storage(obj.storage).as_strided(obj.size, obj.stride, obj.offset)
    if isinstance(obj, ForeignGlobal):
        return obj.global_name
    if isinstance(obj, ForeignInstance):
        obj = obj.content()
    if isinstance(obj, dict):
        return {materialise(key, storage): materialise(value, storage) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj)(materialise(value, storage) for value in obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            return materialise(obj.tolist(), storage)
        return torch.from_numpy(np.array(obj, order="C", copy=True))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def read_zip(path: Path, foreign: ForeignGlobals) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a zip file but not a torch checkpoint (no single data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}constants.pkl" in archive.namelist():
            raise ValueError(f"{path}: a TorchScript archive, not a checkpoint of weights")
        byteorder = f"{prefix}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).decode().strip() != "little":
            raise ValueError(f"{path}: big-endian checkpoints are not supported")
        with archive.open(pickles[0]) as f:
            unpickler = RestrictedUnpickler(f, str(path), STORAGE_DTYPES, foreign)
            obj = unpickler.load()
        cache: Dict[str, torch.Tensor] = {}

        def storage(ref: StorageRef) -> torch.Tensor:
            if ref.key not in cache:
                name = f"{prefix}data/{ref.key}"
                try:
                    info = archive.getinfo(name)
                except KeyError:
                    raise ValueError(f"{path}: storage {ref.key} is named by its tensors but not in the file") from None
                nbytes = storage_bytes(ref, info.file_size, str(path))
                with archive.open(name) as record:  # no more than the storage: a record may inflate to anything
                    cache[ref.key] = storage_tensor(record.read(nbytes), ref, str(path))
            return cache[ref.key]

        return materialise(obj, storage)


def read_legacy(path: Path, foreign: ForeignGlobals) -> Any:
    with open(path, "rb") as f:
        try:
            magic = RestrictedUnpickler(f, str(path), STORAGE_DTYPES, foreign).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            if isinstance(e, UnsafeCheckpointError):
                raise
            raise ValueError(f"{path}: neither a torch checkpoint (zip or legacy) nor .safetensors ({e})") from e
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(f"{path}: neither a torch checkpoint (zip or legacy) nor .safetensors")
        if RestrictedUnpickler(f, str(path), STORAGE_DTYPES, foreign).load() != LEGACY_PROTOCOL_VERSION:
            raise ValueError(f"{path}: a legacy torch file of an unsupported protocol version")
        RestrictedUnpickler(f, str(path), STORAGE_DTYPES, foreign).load()  # system info
        unpickler = RestrictedUnpickler(f, str(path), STORAGE_DTYPES, foreign)
        obj = unpickler.load()
        keys = RestrictedUnpickler(f, str(path), STORAGE_DTYPES, foreign).load()
        tensors = {}
        for key in keys:
            ref = unpickler.storages[str(key)]
            numel = int.from_bytes(f.read(8), "little")
            if numel != ref.numel:
                raise ValueError(f"{path}: storage {key} holds {numel} elements, its tensors say {ref.numel}")
            left = path.stat().st_size - f.tell()
            tensors[ref.key] = storage_tensor(f.read(storage_bytes(ref, left, str(path))), ref, str(path))
    return materialise(obj, lambda ref: tensors[ref.key])


def read_checkpoint(path: PathLike) -> Any:
    """The content of a ``.pt``/``.pth``/``.ckpt``/``.bin`` (torch zip or legacy format, pickle protocols 1 to
    5) or ``.safetensors`` file: dicts, lists, tuples, tensors and Python values; classes off the allow-list as
    their dotted names, their instances as dicts. Refuses, with UnsafeCheckpointError naming the global and the
    file, a file that calls anything off the allow-list (that would run code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    foreign = ForeignGlobals(str(path))
    content = read_zip(path, foreign) if is_zip else read_legacy(path, foreign)
    if foreign.classes:
        logging.info(
            f"checkpoint {path}: read past references to {len(foreign.classes)} globals off the allow-list, none "
            f"called (classes read as their names, their instances as dicts): {', '.join(sorted(foreign.classes))}"
        )
    return content
