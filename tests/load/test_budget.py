"""The message budget --workers share: every message goes to exactly one taker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qmqpsource.load.budget import CHUNKS_PER_WORKER, MAX_CHUNKS, MessageBudget


def take_all(budget: MessageBudget) -> list[int]:
    numbers: list[int] = []
    while (chunk := budget.take()) is not None:
        first, count = chunk
        assert count >= 1
        numbers.extend(range(first, first + count))
    return numbers


@pytest.mark.parametrize("total", [1, 2, 127, 128, 129, 20000, 10**7])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_one_taker_gets_every_message_once_in_order(total: int, workers: int) -> None:
    budget = MessageBudget(total, workers)
    if total > 10**6:
        # Too many to list: check the chunk arithmetic and the ends instead.
        assert -(-total // budget.size) <= MAX_CHUNKS
        chunks = []
        while (chunk := budget.take()) is not None:
            chunks.append(chunk)
        assert chunks[0] == (0, budget.size)
        assert sum(count for _, count in chunks) == total
        assert chunks[-1][0] + chunks[-1][1] == total
        return
    assert take_all(budget) == list(range(total))
    assert budget.take() is None  # spent stays spent


def test_chunks_are_small_enough_to_balance() -> None:
    budget = MessageBudget(20000, 2)
    assert budget.size == -(-20000 // (2 * CHUNKS_PER_WORKER))
    budget.close()


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        MessageBudget(0, 2)
    with pytest.raises(ValueError):
        MessageBudget(10, 0)


# A taker in a process of its own, as a spawned worker is: it adopts the inherited read end.
TAKER = """
import json, sys
from qmqpsource.load.budget import MessageBudget
budget = MessageBudget.adopt(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
numbers = []
while (chunk := budget.take()) is not None:
    numbers.extend(range(chunk[0], chunk[0] + chunk[1]))
print(json.dumps(numbers))
"""


def test_takers_in_other_processes_share_it_without_overlap() -> None:
    """Three processes take at once, as workers do: together, exactly every message.
    (Spawned, not forked: pytest's process may have threads, and a fork would copy them
    half-way.)"""
    budget = MessageBudget(50000, 3)
    argv = [sys.executable, "-c", TAKER, str(budget.fd), str(budget.total), str(budget.size)]
    takers = [subprocess.Popen(argv, stdout=subprocess.PIPE, pass_fds=[budget.fd])
              for _ in range(3)]
    budget.close()
    seen: list[int] = []
    for taker in takers:
        out, _ = taker.communicate(timeout=60)
        assert taker.returncode == 0
        seen.extend(json.loads(out))
    assert sorted(seen) == list(range(50000))


def test_a_closed_budget_gives_nothing_more() -> None:
    budget = MessageBudget(10, 1)
    assert budget.take() == (0, 1)
    budget.close()
    assert budget.take() is None
