"""bench_scale's reading of Kafka's consumer-groups tool and its wait for settled groups."""

from deploy.local.bench_scale import GROUPS, NAMESPACE, parse_group_states, settled

# As printed by ConsumerGroupCommand --describe --state (Kafka 4.3) on the local cluster.
OUTPUT = """
GROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS
bench.routing   127.0.0.1:29092  (1)      range                Stable               3

Consumer group 'bench.notifier' has no active members.

GROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS
bench.notifier  127.0.0.1:29094  (3)      -                    Empty                0

GROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS
bench.deadline  127.0.0.1:29093  (2)      range                PreparingRebalance   2
"""


def test_each_groups_state_and_members_are_read() -> None:
    assert parse_group_states(OUTPUT, [NAMESPACE + g for g in GROUPS]) == {
        "bench.routing": ("Stable", 3),
        "bench.notifier": ("Empty", 0),
        "bench.deadline": ("PreparingRebalance", 2),
    }


def test_groups_of_other_namespaces_are_ignored() -> None:
    assert parse_group_states(OUTPUT, ["test.routing"]) == {}


def test_settled_needs_every_group_stable_with_all_its_members() -> None:
    stable = {NAMESPACE + g: ("Stable", 3) for g in GROUPS}
    assert settled(stable, 3)
    assert not settled(stable, 4)
    assert not settled({**stable, "bench.routing": ("CompletingRebalance", 3)}, 3)
    assert not settled({k: v for k, v in stable.items() if k != "bench.notifier"}, 3)
