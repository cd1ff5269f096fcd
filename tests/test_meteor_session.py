"""A run that scores METEOR starts the jar's JVM once, before inference, and shares it between tasks."""

from __future__ import annotations

import pytest

from mmbench.metrics import java
from mmbench.runner.evaluate import evaluate
from tests.fixtures import tiny_models
from tests.helpers import make_caption_task

pytestmark = [pytest.mark.java, pytest.mark.skipif(not java.java_status()[0], reason="needs Java")]


def _counting(monkeypatch) -> list[tuple[str, ...]]:
    started: list[tuple[str, ...]] = []
    real = java.java_process

    def counting(args, **kwargs):
        started.append(tuple(args))
        return real(args, **kwargs)

    monkeypatch.setattr(java, "java_process", counting)
    return started


@pytest.mark.slow
def test_one_jvm_serves_every_caption_task_of_a_run(tmp_path, monkeypatch):
    make_caption_task(tmp_path / "a", name="cap_a", n=3)
    make_caption_task(tmp_path / "b", name="cap_b", n=3)
    model = tiny_models.make_vit_gpt2_captioner(tmp_path / "ckpt")
    started = _counting(monkeypatch)
    run = evaluate(model=model, tasks=["cap_a", "cap_b"], include=[str(tmp_path / "a" / "tasks"),
                   str(tmp_path / "b" / "tasks")], output=str(tmp_path / "out"), cache=False)
    meteor_starts = [a for a in started if any("meteor" in part for part in a)]
    assert len(meteor_starts) == 1
    for name in ("cap_a", "cap_b"):
        assert "METEOR" in run["tasks"][name]["metrics"]
    # the same values as jars started per computation (no session)
    alone = evaluate(model=model, tasks=["cap_a"], include=[str(tmp_path / "a" / "tasks")],
                     output=str(tmp_path / "alone"), cache=False)
    assert alone["tasks"]["cap_a"]["metrics"]["METEOR"] == run["tasks"]["cap_a"]["metrics"]["METEOR"]


def test_no_jvm_when_meteor_is_off(tmp_path, monkeypatch):
    make_caption_task(tmp_path, name="cap_off", n=2)
    model = tiny_models.make_vit_gpt2_captioner(tmp_path / "ckpt")
    started = _counting(monkeypatch)
    run = evaluate(model=model, tasks=["cap_off"], include=[str(tmp_path / "tasks")], output=str(tmp_path / "out"),
                   cache=False, meteor=False)
    assert started == [] and "METEOR" not in run["tasks"]["cap_off"]["metrics"]


def test_an_error_inside_a_session_passes_through_unchanged():
    class Boom(Exception):
        pass

    with pytest.raises(Boom, match="^inside$"):
        with java.meteor_session():
            assert java._METEOR_SESSION  # the JVM was started
            raise Boom("inside")
    assert not java._METEOR_SESSION
