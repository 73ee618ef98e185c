"""ESPnet's recipe shape: egs/TEMPLATE/slap1/setup.sh makes a recipe with its own cmd.sh, conf/ and local/, and
links to the template's slap.sh, path.sh and utils/; the shipped recipes have that shape."""

import filecmp
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, copy_recipes

TEMPLATE = REPO / "egs" / "TEMPLATE" / "slap1"
LINKED = ("slap.sh", "sweep.sh", "path.sh", "utils")
QUEUE_CONFS = ("slurm.conf", "sge.conf", "pbs.conf")


def setup(egs, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(egs / "TEMPLATE" / "slap1" / "setup.sh"), f"egs/{name}/slap1"],
        cwd=egs.parent,
        capture_output=True,
        text=True,
    )


def test_setup_copies_what_a_recipe_edits_and_links_the_rest(tmp_path):
    egs = copy_recipes(tmp_path)
    proc = setup(egs, "newcorpus")
    assert proc.returncode == 0, proc.stderr
    new = egs / "newcorpus" / "slap1"
    for name in LINKED:
        assert (new / name).is_symlink() and str((new / name).readlink()) == f"../../TEMPLATE/slap1/{name}"
        assert (new / name).exists()
    copied = ["cmd.sh", *(f"conf/{p.name}" for p in sorted((TEMPLATE / "conf").iterdir()))]
    for name in copied:
        assert not (new / name).is_symlink() and filecmp.cmp(new / name, TEMPLATE / name, shallow=False), name
    assert (new / "local" / "data.sh").exists() and (new / "run.sh").exists()
    (new / "conf" / "slurm.conf").write_text("command sbatch -p mine\n")  # one recipe's edit stays its own
    assert filecmp.cmp(egs / "TEMPLATE" / "slap1" / "conf" / "slurm.conf", TEMPLATE / "conf" / "slurm.conf")
    assert subprocess.run(["./run.sh"], cwd=new, capture_output=True, text=True).returncode != 0  # the skeleton
    again = setup(egs, "newcorpus")
    assert again.returncode == 1 and "exists and is not empty" in again.stderr
    misplaced = subprocess.run([str(egs / "TEMPLATE/slap1/setup.sh"), "x/slap1"], cwd=tmp_path, capture_output=True)
    assert misplaced.returncode == 1 and b"must be egs/<corpus>/slap1" in misplaced.stderr


@pytest.mark.parametrize("recipe", sorted(p.parents[1].name for p in (REPO / "egs").glob("*/slap1/run.sh")))
def test_every_recipe_has_the_shape_setup_makes(recipe):
    """Each recipe's cmd.sh and queue confs are its own files (editing one recipe's conf/slurm.conf edits no
    other); slap.sh, path.sh and utils/ link to the template."""
    path = REPO / "egs" / recipe / "slap1"
    for name in ("cmd.sh", *(f"conf/{c}" for c in QUEUE_CONFS)):
        assert (path / name).is_file() and not (path / name).is_symlink(), name
    for name in LINKED:
        assert (path / name).is_symlink() and (path / name).resolve() == (TEMPLATE / name).resolve(), name


def tree(root: Path) -> dict:
    """{relative path: ("link", target) or ("file", bytes)} of a recipe's sources (not its data/, dump/, exp/)."""
    return {
        str(p.relative_to(root)): ("link", str(p.readlink())) if p.is_symlink() else ("file", p.read_bytes())
        for p in sorted(root.rglob("*"))
        if (p.is_symlink() or p.is_file()) and p.relative_to(root).parts[0] not in ("data", "dump", "exp")
    }


def test_setup_and_mini_synths_own_files_make_the_default_recipe(tmp_path):
    """setup.sh's recipe with mini_synth's own files (run.sh, db.sh, README.md, the ESPnet-EZ example ez_train.py,
    local/, conf/tuning/, its studies conf/sweep/ and conf/score_sweep.yaml) in place and
    the template's paper-scale configs left out is egs/mini_synth/slap1 file for file and link for link: the default
    recipe's run (conftest.py's mini_synth, tests/test_recipe.py) is the run of a recipe that setup.sh makes."""
    egs = copy_recipes(tmp_path)
    assert setup(egs, "made").returncode == 0
    new, mini = egs / "made" / "slap1", REPO / "egs" / "mini_synth" / "slap1"
    for name in ("run.sh", "db.sh", "README.md", "ez_train.py"):
        shutil.copy2(mini / name, new / name)
    shutil.rmtree(new / "local")
    shutil.copytree(mini / "local", new / "local")
    shutil.copytree(mini / "conf" / "tuning", new / "conf" / "tuning")
    shutil.copytree(mini / "conf" / "sweep", new / "conf" / "sweep")
    shutil.copy2(mini / "conf" / "score_sweep.yaml", new / "conf" / "score_sweep.yaml")
    made = tree(new)
    paper_scale = {name for name in made if re.fullmatch(r"conf/train_\w+\.yaml", name)}
    assert paper_scale == {f"conf/{p.name}" for p in (TEMPLATE / "conf").glob("train_*.yaml")}  # mini_synth: tiny only
    assert {name: made[name] for name in made.keys() - paper_scale} == tree(mini)


def test_path_sh_activates_the_venv_slap_venv_names(tmp_path):
    """A user's own ESPnet environment runs the recipes: SLAP_VENV=$VIRTUAL_ENV ./run.sh (README); path.sh exports
    it for the jobs; a SLAP_VENV that is not a venv is named."""
    own = tmp_path / "own_env"
    (own / "bin").mkdir(parents=True)
    (own / "bin" / "activate").write_text("export ACTIVATED=own_env\n")
    recipe = REPO / "egs" / "mini_synth" / "slap1"
    show = ". ./path.sh && echo $ACTIVATED $SLAP_VENV && bash -c 'echo job sees $SLAP_VENV'"
    env = {"PATH": "/usr/bin:/bin", "SLAP_VENV": str(own)}
    proc = subprocess.run(["bash", "-c", show], cwd=recipe, env=env, capture_output=True, text=True)
    assert proc.stdout.splitlines() == [f"own_env {own}", f"job sees {own}"], proc.stderr
    env["SLAP_VENV"] = str(tmp_path / "none")
    proc = subprocess.run(["bash", "-c", show], cwd=recipe, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and f"path.sh: {tmp_path / 'none'} is missing" in proc.stderr
