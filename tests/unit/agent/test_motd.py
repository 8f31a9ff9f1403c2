"""The login message: sections that never clobber each other, written atomically."""

from dev8.agent.motd import Motd


def test_sections_combine_in_a_fixed_order_and_go_away_one_by_one(tmp_path):
    motd = Motd(tmp_path / "motd")
    motd.set("quota", "dev8: home volume nearly full.")
    motd.set("packages", "dev8: 2 packages could not be restored.\n")
    assert (tmp_path / "motd").read_text() == (
        "dev8: 2 packages could not be restored.\ndev8: home volume nearly full.\n"
    )
    motd.set("packages", None)
    assert (tmp_path / "motd").read_text() == "dev8: home volume nearly full.\n"
    motd.set("quota", "")
    assert not (tmp_path / "motd").exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_sections_come_last(tmp_path):
    motd = Motd(tmp_path / "motd")
    motd.set("zzz", "other")
    motd.set("quota", "quota")
    assert motd.text() == "quota\nother\n"
