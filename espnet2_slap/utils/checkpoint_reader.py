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

Allowed: tensors and parameters (as plain tensors), torch dtypes and storage types, ``OrderedDict``, sets,
numpy scalars (converted to Python numbers) and arrays (converted to tensors; object arrays to lists).
Anything else (``os.system``, a class of some package, a pickled module) raises ``UnsafeCheckpointError``
naming the global and the file before it is ever called. ``.safetensors`` files are read with safetensors.
"""

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Tuple, Union

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
    """A checkpoint names a global that could run code; nothing of it was executed."""


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


NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED_GLOBALS: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("_codecs", "encode"): latin1_bytes,
    ("torch", "Size"): tuple,
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{(module, "_reconstruct"): numpy_array for module in NUMPY_MODULES},
    **{(module, "scalar"): numpy_scalar for module in NUMPY_MODULES},
    **{(module, "_frombuffer"): numpy_array_from_buffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
    **{("torch", name): dtype for name, dtype in STORAGE_DTYPES.items()},
}


def allowed_global(module: str, name: str) -> Any:
    """The object a pickle may name, or None: the allow-list, torch dtypes (torch.float32, ...) and numpy's
    dtype classes (numpy.dtypes.Float64DType, ...)."""
    if (module, name) in ALLOWED_GLOBALS:
        return ALLOWED_GLOBALS[(module, name)]
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module == "numpy.dtypes" and name.endswith("DType"):
        cls = getattr(np.dtypes, name, None)
        if isinstance(cls, type) and issubclass(cls, np.dtype):
            return cls
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Python's unpickler (every protocol) whose globals are limited to ``allowed_global``; storages become
    StorageRef and tensors TensorRef."""

    def __init__(self, file, source: str, storage_types: Dict[str, torch.dtype]):
        super().__init__(file, encoding="latin1")
        self.source = source
        self.storages: Dict[str, StorageRef] = {}
        self.storage_types = storage_types

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # protocol 2 names them as Python 2 did
        found = allowed_global(module, name)
        if found is None:
            raise UnsafeCheckpointError(
                f"{self.source}: refused to load: the file names the global {module}.{name}, which is not a "
                "tensor, a number or a plain container; loading it could run code, so nothing of it was run. "
                "A checkpoint must hold tensors and plain values only (re-save its state_dict, or use "
                ".safetensors)"
            )
        return found

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


def storage_tensor(data: bytes, ref: StorageRef, source: str) -> torch.Tensor:
    """The bytes of a storage as a 1-D tensor of its dtype."""
    nbytes = ref.numel * element_size(ref.dtype)
    if len(data) < nbytes:
        raise ValueError(f"{source}: storage {ref.key} is truncated ({len(data)} of {nbytes} bytes)")
    if nbytes == 0:
        return torch.empty(0, dtype=ref.dtype)
    return torch.frombuffer(bytearray(data[:nbytes]), dtype=ref.dtype)


def materialise(obj: Any, storage: Callable[[StorageRef], torch.Tensor]) -> Any:
    """Replaces TensorRefs by tensors and numpy values by tensors and Python numbers, in plain containers."""
    if isinstance(obj, TensorRef):
        return storage(obj.storage).as_strided(obj.size, obj.stride, obj.offset)
    if isinstance(obj, dict):
        return {key: materialise(value, storage) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj)(materialise(value, storage) for value in obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.dtype.hasobject else torch.from_numpy(np.array(obj, order="C", copy=True))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def read_zip(path: Path) -> Any:
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
            unpickler = RestrictedUnpickler(f, str(path), STORAGE_DTYPES)
            obj = unpickler.load()
        cache: Dict[str, torch.Tensor] = {}

        def storage(ref: StorageRef) -> torch.Tensor:
            if ref.key not in cache:
                cache[ref.key] = storage_tensor(archive.read(f"{prefix}data/{ref.key}"), ref, str(path))
            return cache[ref.key]

        return materialise(obj, storage)


def read_legacy(path: Path) -> Any:
    with open(path, "rb") as f:
        try:
            magic = RestrictedUnpickler(f, str(path), STORAGE_DTYPES).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            if isinstance(e, UnsafeCheckpointError):
                raise
            raise ValueError(f"{path}: neither a torch checkpoint (zip or legacy) nor .safetensors ({e})") from e
        if magic != LEGACY_MAGIC_NUMBER:
            raise ValueError(f"{path}: neither a torch checkpoint (zip or legacy) nor .safetensors")
        if RestrictedUnpickler(f, str(path), STORAGE_DTYPES).load() != LEGACY_PROTOCOL_VERSION:
            raise ValueError(f"{path}: a legacy torch file of an unsupported protocol version")
        RestrictedUnpickler(f, str(path), STORAGE_DTYPES).load()  # system info
        unpickler = RestrictedUnpickler(f, str(path), STORAGE_DTYPES)
        obj = unpickler.load()
        keys = RestrictedUnpickler(f, str(path), STORAGE_DTYPES).load()
        tensors = {}
        for key in keys:
            ref = unpickler.storages[str(key)]
            numel = int.from_bytes(f.read(8), "little")
            if numel != ref.numel:
                raise ValueError(f"{path}: storage {key} holds {numel} elements, its tensors say {ref.numel}")
            tensors[ref.key] = storage_tensor(f.read(numel * element_size(ref.dtype)), ref, str(path))
    return materialise(obj, lambda ref: tensors[ref.key])


def read_checkpoint(path: PathLike) -> Any:
    """The content of a ``.pt``/``.pth``/``.ckpt``/``.bin`` (torch zip or legacy format, pickle protocols 2 to
    5) or ``.safetensors`` file: dicts, lists, tuples, tensors and Python values. Refuses, with
    UnsafeCheckpointError naming the global and the file, anything that could run code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip:
        return read_zip(path)
    return read_legacy(path)
