"""The benchmarks' compositions: where each recording sits, so false alerts can be traced."""

from bench.false_alerts import what_was_playing
from bench.live_streams import RATE, make_variants


def test_pieces_tile_the_composition_and_name_what_plays(real_v1):
    variants = make_variants(3, 12.0, seed=4)
    for variant in variants:
        starts = [start for start, _ in variant.pieces]
        assert starts[0] == 0.0 and starts == sorted(starts) and starts[-1] < variant.seconds
        # The scream is one of the pieces, where the composition says it starts.
        scream = [row for start, row in variant.pieces if start == variant.scream_at]
        assert len(scream) == 1 and scream[0]["class"] == "1"
        assert scream[0]["path"] == variant.name
        # Every other piece is a non-scream recording of the pack.
        others = [row for start, row in variant.pieces if start != variant.scream_at]
        assert others and all(row["class"] != "1" for row in others)
        row, to_join = variant.piece_at(variant.scream_at + 0.25)
        assert row["path"] == variant.name and to_join == 0.25
        row, to_join = variant.piece_at(variant.seconds - 1e-3)
        assert row is variant.pieces[-1][1]
        assert len(variant.pcm) == int(12.0 * RATE)

    # False alerts in the recording after the scream: 0.5 s after its join with the scream,
    # and 1.5 s after it (more than 1 s from any join when the recording lasts to the end).
    variant = next(v for v in variants if v.pieces[-1][1]["class"] != "1")
    index = max(i for i, (_, r) in enumerate(variant.pieces) if r["class"] == "1") + 1
    start, row = variant.pieces[index]
    end = variant.pieces[index + 1][0] if index + 1 < len(variant.pieces) else variant.seconds
    times = [start + 0.5, start + 1.5]
    assert times[-1] < end
    summary = what_was_playing([(variant, t) for t in times])
    assert summary["by_kind"] == {row["subcategory"]: 2}
    assert summary["most_frequent_files"] == {row["path"]: 2}
    far = end - times[-1] > 1.0
    assert summary["within_1_s_of_a_join"] == (1 if far else 2)
    # The start of the stream is no join.
    first_end = variant.pieces[1][0]
    assert variant.piece_at(0.0)[1] == first_end
