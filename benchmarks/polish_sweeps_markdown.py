"""``benchmarks/POLISH_SWEEPS.md`` from a record of :mod:`benchmarks.polish_sweeps`: one
table per bit width and start, one row per setting swept, with the emulation's caveat
when the QPU was ``qpu-mock``.
"""

from __future__ import annotations


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def markdown(record: dict, command: str, load: str) -> str:
    """The page for ``record``, run by ``command`` at load average ``load``."""
    mock = record["emulation"]
    lines = [
        "# QPU sweeps for window polishing (digits' second layer)",
        "",
        f"`{command}` (2-core machine, load average before the run {load}); solver "
        f"`{record['solver']}`, largest clique {record['largest_clique_size']}, "
        f"{record['reads']} reads per anneal, the first {record['per_neuron']} windows "
        "of every neuron (its first polishing pass), from kbest's answer and, for "
        "windows with room in them, from round-to-nearest's.",
        "",
    ]
    if mock:
        lines += [
            "**An emulation, no measure of a QPU.** `qpu-mock` is dwave-system's "
            "MockDWaveSampler: steepest descent on the clique-embedded problem, "
            "started from the incumbent for a reverse anneal. It ignores "
            "`anneal_schedule` (so the turning-point rows can only agree) and has no "
            "chain physics; its timing is a fixed table. These rows show that the path "
            "works (embedding, chains, packing, scoring), not what a QPU would find; "
            "`--solver qpu` runs them on Leap. Its one-qubit descent moves cannot flip a "
            "chain of several qubits whole, which is a likely reason why, from a warm "
            "start, it leaves windows with chains of three or more qubits where they "
            "were.",
            "",
        ]
    lines += [
        "Each row changes one setting from the base (window 12 weights, chain strength "
        "1× dwave-system's default, a reverse anneal from the incumbent turning at s = 0.45, "
        "one window per anneal; *forward, cold*: no start, the QPU's default anneal). "
        "*optimum found*: windows whose answer reaches the window's exact optimum (box "
        "decoder); *room removed*: of the energy between the incumbent and the window "
        "optima, the net share the answers removed (windows with room only; an answer "
        "above its incumbent counts against it); *lost*: "
        "answers above the incumbent (the polisher rejects them); *raw energy*: the "
        "mean best window-BQM energy returned, before the exact check.",
        "",
    ]
    head = (
        "| sweep | value | windows (with room) | variables | optimum found | room "
        "removed | improved / lost | raw energy | chain breaks | max chain | anneals | "
        "billed s | wall s |"
    )
    for key, cell in record["cells"].items():
        _, _, bits, origin = key.split("|")
        lines += [
            f"## int{bits}, windows of {origin}'s answer: {cell['description']}",
            "",
            head,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in cell["rows"]:
            value = {
                "window": f"{row['window']} weights",
                "chain": f"{row['chain']:g}×",
                "s": f"s = {row['s']:g}",
                "packed": "packed" if row["packed"] else "one per anneal",
                "reverse": "reverse" if row["reverse"] else "forward, cold",
            }[row["sweep"]]
            lines.append(
                f"| {row['sweep']} | {value} | {row['windows']} ({row['windows_with_room']}) | "
                f"{row['variables_mean']:.1f} | {_percent(row['optimum_found'])} | "
                f"{_percent(row['room_removed'])} | {row['improved']} / "
                f"{row['lost_incumbent']} | {row['raw_energy_mean']:.4g} | "
                f"{_percent(row['chain_break_fraction'])} | {row['chain_length_max']} | "
                f"{row['anneals']} | {row['billed_seconds']:.3f} | {row['seconds']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)
