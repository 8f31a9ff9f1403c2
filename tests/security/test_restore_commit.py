"""Issue 16, item 7: a restore of several volumes killed during its commit left some of
them new and the others old (home new, workspace old). Now the restore commits at one
point for all of them: killed anywhere, the agent's start brings back every volume old, or
every volume new.

The swap runs as root in a helper container; here the same program runs as root on
directories (``tests/security/restore_kill.py`` kills it at a chosen rename), and the
agent's own recovery (``recover_restores``) settles what it left. The engine test in
tests/integration/backup/test_interrupted_restore.py does the same on real volumes.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from dev8.agent import volume_swap
from dev8.agent.__main__ import recover_restores
from dev8.agent.config import AgentConfig
from dev8.core.naming import RESTORE_DIR
from tests.security.restore_kill import KILLED, killer_argv, swap_program
from tests.unit.agent.test_volume_swap import make_tree, snapshot, stage

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the swap runs as root; so must this")

ROLES = ("home", "workspace", "system")


def _volumes(tmp_path, attempt: int) -> dict:
    roots = {role: tmp_path / str(attempt) / role for role in ROLES}
    for role, root in roots.items():
        make_tree(root, f"old-{role}", entries=3)
    return roots


def _install_killed(roots: dict, kind: str, limit: int) -> int:
    argv = killer_argv(kind, limit, "install", "t", [f"{r}={p}" for r, p in roots.items()])
    env = {**os.environ, "DEV8_SWAP_PY": swap_program()}
    return subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode


@pytest.mark.parametrize("kind", ["rename", "journal"])
def test_killed_at_every_point_of_the_commit_all_volumes_are_old_or_all_new(tmp_path, kind):
    outcomes = []
    for limit in range(1, 200):
        roots = _volumes(tmp_path / kind, limit)
        old = {role: snapshot(root) for role, root in roots.items()}
        for role, root in roots.items():
            stage(root, "t", f"new-{role}", entries=3)
        new = {role: snapshot(root / RESTORE_DIR / "incoming") for role, root in roots.items()}
        code = _install_killed(roots, kind, limit)
        if code == 0:
            break
        assert code == KILLED, f"not killed at {kind} {limit}"
        config = AgentConfig(
            home=roots["home"], workspace=roots["workspace"], state_dir=roots["system"]
        )
        recover_restores(config)
        # Nothing is left behind but a staged tree no swap has touched (the agent leaves
        # those to the next restore, whose first helper removes them, as here).
        for root in roots.values():
            state = (volume_swap.read_journal(root) or {"state": "staging"})["state"]
            assert state == "staging", f"killed before {kind} {limit}: {root} is {state}"
        volume_swap.recover(roots, keep_staging=False)
        after = {role: snapshot(root) for role, root in roots.items()}
        assert after in (old, new), f"killed before {kind} {limit}: a mixture"
        outcomes.append("new" if after == new else "old")
    else:
        pytest.fail("the install never completed")
    assert "old" in outcomes and "new" in outcomes, outcomes


def test_a_volume_is_left_alone_while_its_restore_s_decision_is_not_given(tmp_path):
    """Recovering one volume alone (a helper that mounts only it) never guesses: the other
    volumes might already hold the new data."""
    roots = _volumes(tmp_path, 0)
    for role, root in roots.items():
        stage(root, "t", f"new-{role}", entries=3)
    assert _install_killed(roots, "journal", 11) == KILLED  # after the commit (10th write)
    assert volume_swap.read_journal(roots["home"])["state"] == "committed"
    alone = volume_swap.recover({"workspace": roots["workspace"]}, keep_staging=False)
    assert alone["workspace"].startswith("left alone")
    with pytest.raises(volume_swap.SwapError, match="decision is in the home volume"):
        volume_swap.prepare(roots["workspace"], "next")
    # All of them given, as the agent, `dev8 doctor --fix` and a restore's first helper do.
    outcomes = volume_swap.recover(roots, keep_staging=False)
    assert all(o.startswith("finished") for o in outcomes.values()), outcomes
    assert all(f"new-{r}-0.txt" in os.listdir(roots[r]) for r in ROLES)
