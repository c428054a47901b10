"""The configuration reference (docs/reference/config.md), generated from the typed schemas.

    python -m action3d.config.reference --write   # rewrite the generated block of docs/reference/config.md
    python -m action3d.config.reference --check   # exit 1 when that block is stale
    python -m action3d.config.reference           # print the block

`render()` reads only declarations, never a config:
- the schemas (`action3d.config.commands.SCHEMAS`) and each field's `Rule` (`action3d.config.option`):
  default, choices, range, list length and entries, nullable, `commands=` (the field's and its
  sections'), help;
- the dataset-format registry (`action3d.data.formats`): which formats read a data key (`key_owners`,
  each class's `refuses`) and each format's one-line `summary`;
- the config groups of conf/ (`data=`, `trainer=`, `optim=`, `sched=`, `recipe=`: the values they set
  where those differ from the schema's default, as Hydra applies them: a group's file fills its
  package, `# @package _global_` the whole config) and the model presets (`PRESETS`).

Layout: one table per section (a dataclass under a key: `model.*`, `data.*`, `data.synthetic.*`,
`optim.*`, `sched.*`, `trainer.*` of train and of the checkpoint commands, `eval.*`), in the order
the sections first appear in SCHEMAS, then one table per command of its own top-level keys.
A section or key is found by walking SCHEMAS (`walk`), so a new one appears without an edit here;
the links to other pages (`SEE_ALSO`, `CLI_ANCHORS`) are the only hand-kept part. Torch-free.
A cell's text (default, allowed values, formats) comes from `reference_text`, what the config
groups set from `reference_groups`.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from action3d.config.commands import SCHEMAS
from action3d.config.model_presets import PRESET_GROUP, PRESETS
from action3d.config.option import COMMANDS, DATA_ACTIONS, Rule, find_field, rule_of, sections, walk
from action3d.config.reference_groups import (
    GroupOption,
    command_actions,
    conf_dir,
    defaults_list,
    group_options,
    groups_text,
)
from action3d.config.reference_text import (
    CHECK_NOTE,
    allowed_text,
    default_text,
    escape,
    formats_text,
    sentence,
)
from action3d.data.formats import FORMATS

BEGIN = "<!-- BEGIN GENERATED: config reference -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "config.md"
COMMAND = "python -m action3d.config.reference --write"

# Links to other pages of the manual (relative to docs/reference/), by row anchor: what a help
# string, which is also read on a terminal, does not hold. The strict docs build checks them.
SEE_ALSO: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "model.pretrained": (("Pretrained weights", "../models.md#pretrained-weights-and-fine-tuning"),),
    "data.format": (("Datasets", "../datasets.md#annotation-formats"),),
    "data.filename_tmpl": (("Frame folders", "../datasets.md#frame-folders-dataformatrawframes"),),
    "data.start_index": (("Frame folders", "../datasets.md#frame-folders-dataformatrawframes"),),
    "data.fps": (("Frame folders", "../datasets.md#frame-folders-dataformatrawframes"),),
    "command-data.quality": (("Frame folders", "../datasets.md#frame-folders-dataformatrawframes"),),
    "data.sampler": (("Imbalanced data", "../tutorials/own-dataset.md#imbalanced-data"),),
    "data.shard_shuffle": (("Training from shards", "../tutorials/kinetics.md#training-from-shards"),),
    "optim.backbone_lr_mult": (("Fine-tuning", "../tutorials/finetuning.md"),),
    "trainer.class_weights": (("Imbalanced data", "../tutorials/own-dataset.md#imbalanced-data"),),
    "command-predict.window": (("Long videos", "../tutorials/deployment.md#long-videos-a-timeline"),),
    "command-predict.timeline": (("Long videos", "../tutorials/deployment.md#long-videos-a-timeline"),),
    "command-embed.window": (("Embeddings", "../tutorials/deployment.md#embeddings"),),
    "command-explain.class_name": (("Explain", "../tutorials/deployment.md#explain-grad-cam"),),
}
# Each command's section of docs/cli.md.
CLI_ANCHORS = {"train": "train", "eval": "eval", "predict": "predict", "data": "data", "info": "info",
               "export": "export-embed-explain", "embed": "export-embed-explain", "explain": "export-embed-explain"}


# --------------------------------------------------------------------------- the tables, from SCHEMAS

@dataclass
class Row:
    name: str                     # the key below the table's prefix: "depth", "num_classes"
    field_: dataclasses.Field
    commands: set = field(default_factory=set)


@dataclass
class Table:
    prefix: str                   # "data.", "data.synthetic."; "" for a command's own keys
    schema: type                  # the section's dataclass (a command table: the command's schema)
    command: str = ""             # a command table's command
    anchor: str = ""
    primary: bool = True          # the first table of its prefix: its rows' anchors are the dotted keys
    rows: Dict[str, Row] = field(default_factory=dict)
    scope: set = field(default_factory=set)                    # commands that read the section
    helps: Dict[str, List[str]] = field(default_factory=dict)  # the section's help -> the commands it says it for

    def row_anchor(self, name: str) -> str:
        """A section's first table: the dotted key (`data.root`); others `ANCHOR.KEY` (`command-eval.split`)."""
        return self.prefix + name if self.prefix and self.primary else f"{self.anchor}.{name}"

    @property
    def label(self) -> str:
        if not self.prefix:
            return f"`action3d {self.command}`"
        return f"`{self.prefix}*`" + ("" if self.primary else f" in {commands_text(self.scope)}")


def _restrict(commands: List[str], rule: Rule) -> List[str]:
    return commands if rule.commands is None else [c for c in commands if c in rule.commands]


def _section_type(schema: type, key: str) -> type:
    return type(find_field(schema, key).default_factory())


def tables() -> List[Table]:
    """Every table of the reference: sections first (in order of first appearance), then commands."""
    by_key: Dict[Tuple[str, Any], Table] = {}
    command_tables: List[Table] = []
    for command, schema in SCHEMAS.items():
        own = Table(prefix="", schema=schema, command=command, anchor=f"command-{command}")
        for key, field_, parents in walk(schema):
            reading = command_actions(command)
            for parent in parents:
                reading = _restrict(reading, rule_of(find_field(schema, parent)))
            if parents:
                section_type = _section_type(schema, parents[-1])
                table = by_key.setdefault((parents[-1], section_type),
                                          Table(prefix=parents[-1] + ".", schema=section_type))
                table.scope.update(reading)
                section_help = rule_of(find_field(schema, parents[-1])).help
                table.helps.setdefault(section_help, [])
                table.helps[section_help] += [c for c in command_actions(command) if c not in table.helps[section_help]]
            else:
                table = own
                table.scope.update(reading)
            name = key[len(table.prefix):]
            row = table.rows.setdefault(name, Row(name=name, field_=field_))
            row.commands.update(_restrict(reading, rule_of(field_)))
        if own.rows:
            command_tables.append(own)
    used: Dict[str, int] = {}
    for table in by_key.values():
        base = table.prefix.rstrip(".").replace(".", "-")
        table.primary = base not in used
        table.anchor = base if table.primary else f"{base}-{_ordered(table.scope)[0].replace(' ', '-')}"
        used[base] = used.get(base, 0) + 1
    return [*by_key.values(), *command_tables]


def _ordered(commands: Any) -> List[str]:
    return [c for c in COMMANDS if c in commands]


def commands_text(commands: Any) -> str:
    """"all", or the commands in COMMANDS order with the data actions as `data check/prepare`."""
    commands = _ordered(commands)
    if not commands:
        return "none"
    if len(commands) == len(COMMANDS):
        return "all"
    actions = [c.split(" ", 1)[1] for c in commands if c.startswith("data ")]
    words = [c for c in commands if not c.startswith("data ")]
    if actions:
        words.append("data" if len(actions) == len(DATA_ACTIONS) else "data " + "/".join(actions))
    return ", ".join(words)


# --------------------------------------------------------------------------- Markdown

def _row_help(table: Table, row: Row) -> str:
    text = escape(rule_of(row.field_).help)
    links = SEE_ALSO.get(table.row_anchor(row.name), ())
    if links:
        text += ". See " + ", ".join(f"[{title}]({target})" for title, target in links) + "."
    return text


def _group_cells(table: Table, options: Dict[str, List[GroupOption]]) -> Dict[str, str]:
    """Row name -> its *config groups* cell, from the groups of the commands that read the section."""
    if not table.prefix:
        return {}
    scope_options = [o for c in _ordered(table.scope) for o in options.get(c, [])]
    unique_options = list({(o.group, o.name): o for o in scope_options}.values())
    return {name: groups_text(table.prefix + name, row.field_, unique_options) for name, row in table.rows.items()}


def _has_group_values(table: Table, options: Dict[str, List[GroupOption]]) -> bool:
    return any(_group_cells(table, options).values())


def _table_markdown(table: Table, options: Dict[str, List[GroupOption]]) -> List[str]:
    data_keys = table.prefix.startswith("data.")
    groups = _group_cells(table, options)
    with_groups = any(groups.values())
    header = ["key", "default"] + (["config groups"] if with_groups else []) + ["allowed", "read by"]
    header += (["formats"] if data_keys else []) + ["meaning"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in table.rows.items():
        shown = table.prefix + name if table.prefix else name
        cells = [f'<a id="{table.row_anchor(name)}"></a>`{shown}`', default_text(row.field_)]
        cells += [escape(groups[name])] if with_groups else []
        cells += [escape(allowed_text(row.field_)), commands_text(row.commands)]
        cells += [formats_text(shown[len("data."):])] if data_keys else []
        cells.append(_row_help(table, row))
        lines.append("| " + " | ".join(cells) + " |")
    if any(rule_of(row.field_).check is not None for row in table.rows.values()):
        lines += ["", CHECK_NOTE]
    return lines


def _groups_line(table: Table, options: Dict[str, List[GroupOption]]) -> str:
    """Which config groups can set this section's keys, and their default options."""
    names: Dict[str, Optional[str]] = {}
    for command in _ordered(table.scope):
        for option_ in options.get(command, []):
            sets_keys = any(k.startswith(table.prefix) for k in option_.values)
            if sets_keys and (option_.group != PRESET_GROUP or table.prefix.startswith("data.")
                              or option_.default):
                names.setdefault(option_.group, None)
                if option_.default:
                    names[option_.group] = option_.name
    if not names:
        return ""
    parts = [f"`{group}=NAME`" + (f" (default: `{chosen}`)" if chosen else "") for group, chosen in names.items()]
    always = " (a model preset's sampling always)" if PRESET_GROUP in names and table.prefix == "data." else ""
    return ("Config groups that set these keys: " + ", ".join(parts) + "; the column *config groups* gives "
            f"their values where they differ from the schema's default{always}.")


def _presets_line(conf: Path) -> str:
    chosen = defaults_list(conf / "train.yaml").get(PRESET_GROUP)
    names = ", ".join(f"`{name}`" + (" (the default)" if name == chosen else "") for name in PRESETS)
    sampled = ", ".join(f"{name} {p.clip_len}x{p.frame_interval}" for name, p in PRESETS.items() if p.sampling())
    return (f"Presets (`model=NAME`, see [Models](../models.md#presets)): {names}. Each preset is a whole set of "
            "these keys; the table gives the schema's defaults and, under *config groups*, the default preset's "
            f"values. Presets designed for a sampling also set `data.clip_len` x `data.frame_interval`: {sampled}.")


def _formats_table() -> List[str]:
    lines = ["| `data.format` | what it reads |", "|---|---|"]
    lines += [f"| `{f.name}` | {escape(f.summary)} |" for f in FORMATS]
    return lines


def render(conf: Optional[Path] = None) -> str:
    """The generated block of docs/reference/config.md (without its markers)."""
    conf = conf or conf_dir()
    all_tables = tables()
    options = group_options(conf)
    anchors = {(t.prefix, t.schema): t.anchor for t in all_tables}
    index = ", ".join(f"[{t.label}](#{t.anchor})" for t in all_tables)
    out = [f"Tables: {index}.", "",
           "Columns: *default* is the schema's; *allowed*: the values a key takes (a list's length and entries, "
           "a range as `>= 1` or `in [0, 1)`); *read by*: the commands in which the key takes effect "
           "(elsewhere setting it is refused, naming why); *formats* (data keys): the `data.format` values that "
           "read it."]
    for table in all_tables:
        out += [""] + _table_section(table, options, anchors, conf)
    return "\n".join(out) + "\n"


def _table_section(table: Table, options: Dict[str, List[GroupOption]], anchors: Dict[Tuple[str, type], str],
                   conf: Path) -> List[str]:
    lines = [f"## {table.label} {{#{table.anchor}}}", ""]
    if table.prefix:
        helps = list(table.helps)
        read_by = f"Read by: {commands_text(table.scope)}."
        if len(helps) == 1:
            lines.append(f"{escape(sentence(helps[0]))} {read_by}")
        else:
            lines += [read_by, ""] + [f"- {commands_text(commands)}: {escape(help_)}"
                                      for help_, commands in table.helps.items()]
        if table.prefix == "model.":
            lines += ["", _presets_line(conf)]
        groups = _groups_line(table, options)
        if groups and _has_group_values(table, options):
            lines += ["", groups]
        if table.prefix == "data.":
            lines += ["", "The dataset formats:", ""] + _formats_table()
    else:
        cli = CLI_ANCHORS.get(table.command)
        own = "Its own keys (`KEY=VALUE` on the command line)"
        nested = []
        for key, field_ in sections(table.schema):
            anchor = anchors[(key + ".", _section_type(table.schema, key))]
            read = _restrict(command_actions(table.command), rule_of(field_))
            nested.append(f"[`{key}.*`](#{anchor})" + ("" if read else " (not read)"))
        if nested:
            own += "; its sections: " + ", ".join(nested)
        if cli:
            own += f"; see [the command line](../cli.md#{cli})"
        lines.append(own + ".")
    return lines + [""] + _table_markdown(table, options)


# --------------------------------------------------------------------------- the page

def generated_block(text: str) -> Optional[str]:
    """What lies between the markers of `text`, or None without them."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start + len(BEGIN):end].strip("\n") + "\n"


def splice(text: str, block: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no {BEGIN} ... {END} block")
    return text[:start + len(BEGIN)] + "\n\n" + block + "\n" + text[end:]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m action3d.config.reference", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the generated block of the page")
    mode.add_argument("--check", action="store_true", help="exit 1 when the page's generated block is stale")
    parser.add_argument("--page", type=Path, default=DOC, help=f"the page (default: {DOC})")
    args = parser.parse_args(argv)
    block = render()
    if not (args.write or args.check):
        sys.stdout.write(block)
        return 0
    text = args.page.read_text(encoding="utf-8")
    if args.check:
        if generated_block(text) != block:
            print(f"{args.page}: the configuration reference is stale; run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    new = splice(text, block)
    if new != text:
        args.page.write_text(new, encoding="utf-8")
        print(f"{args.page}: configuration reference rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
