"""Account state stays bounded: records are trimmed, what they changed is kept."""

from __future__ import annotations

import pytest

from emulator.config import AlibabaAccount
from emulator.providers.alibaba import models
from emulator.providers.alibaba.models import AlibabaState, ImageFeedback, TaskResult


def test_records_keep_the_newest_and_libraries_keep_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "MAX_RECORDS", 10)
    state = AlibabaState(AlibabaAccount(access_key_id="k", access_key_secret="s", uid="1"))
    for i in range(25):
        state.add_image_feedback(
            ImageFeedback(request_id=f"r{i}", received_at=0.0, url=f"http://a/{i}.jpg", suggestion="pass")
        )
        state.add_scan_task(TaskResult(code=200, msg="OK", task_id=f"t{i}"))
        assert len(state.image_feedback) <= 11  # trimmed in batches of a tenth
        assert len(state.scan_tasks) <= 10
    assert state.image_feedback[-1].request_id == "r24"
    assert list(state.scan_tasks) == [f"t{i}" for i in range(15, 25)]
    assert len(state.image_library) == 25
