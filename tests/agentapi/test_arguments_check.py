"""The reused per-thread checkers (apps.agentapi.inputs.arguments_check) answer every check
as a new serializer would, whatever the checks before it were."""

from __future__ import annotations

import random
import threading

import pytest

from apps.agentapi.inputs import INPUT_CLASSES, arguments_check

PAYLOADS = [
    ("send_message", {"to": "@bot", "body": "hi"}),
    ("send_message", {"to": ["@bot", "@ann"], "body": "hi", "thread": "#general"}),
    ("send_message", {"to": 5, "body": "hi"}),
    ("send_message", {"body": ""}),
    ("send_message", {"to": "@bot", "body": "x", "thread": 10**30}),
    ("send_message", {"to": "@bot", "body": "x", "thread": "99999999999999999999"}),
    ("post_message", {"body": "hello @bot"}),
    ("post_message", {"body": None}),
    ("read_inbox", {}),
    ("read_inbox", {"limit": "many"}),
    ("read_inbox", {"limit": 3, "include_read": True}),
    ("ack", {"deliveries": [1, 2, 3]}),
    ("ack", {"deliveries": [1, "two", -3]}),
    ("ack", {"deliveries": []}),
    ("get_run", {"run": 1}),
    ("memory_set", {"key": "a/b", "value": ""}),
    ("memory_set", {"key": "", "value": 1}),
    ("list_changes", {"status": "merged", "mine": True}),
    ("list_changes", {"status": "bogus"}),
    ("delegate", {"to": "@bot", "goal": "g", "wait": True, "timeout": 5}),
]


def fresh(verb, data):
    serializer = INPUT_CLASSES[verb](data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data), None
    return None, serializer.errors


def test_every_check_matches_a_new_serializers_in_any_order():
    checks = PAYLOADS * 4
    random.Random(7).shuffle(checks)
    for verb, data in checks:
        assert arguments_check(verb, data) == fresh(verb, data), (verb, data)


@pytest.mark.parametrize("verb", ["send_message", "ack"])
def test_a_valid_check_after_a_failed_one_has_no_errors_left(verb):
    bad = {"send_message": {"to": 5}, "ack": {"deliveries": "x"}}[verb]
    good = {"send_message": {"to": "@bot", "body": "hi"}, "ack": {"deliveries": [1]}}[verb]
    assert arguments_check(verb, bad)[0] is None
    arguments, errors = arguments_check(verb, good)
    assert errors is None and arguments == fresh(verb, good)[0]
    assert arguments_check(verb, bad) == fresh(verb, bad)


def test_threads_check_at_once_without_sharing_a_checker():
    failures = []

    def check(seed):
        order = PAYLOADS * 10
        random.Random(seed).shuffle(order)
        for verb, data in order:
            if arguments_check(verb, data) != fresh(verb, data):
                failures.append((verb, data))

    threads = [threading.Thread(target=check, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
