from mirror.cache.fill import Part, plan_parts

MIB = 1024 * 1024


def test_parts_start_small_then_use_the_part_size():
    parts = plan_parts(200 * MIB, 4 * MIB, 64 * MIB)
    assert [(p.start, p.end) for p in parts] == [
        (0, 4 * MIB), (4 * MIB, 68 * MIB), (68 * MIB, 132 * MIB), (132 * MIB, 196 * MIB), (196 * MIB, 200 * MIB)
    ]


def test_small_blob_is_one_part():
    assert [(p.start, p.end) for p in plan_parts(1000, 4 * MIB, 64 * MIB)] == [(0, 1000)]


def test_empty_blob_has_no_parts():
    assert plan_parts(0, 4 * MIB, 64 * MIB) == []


def test_part_is_complete_when_all_its_bytes_are_written():
    part = Part(10, 20)
    assert not part.complete
    part.written = 10
    assert part.complete
