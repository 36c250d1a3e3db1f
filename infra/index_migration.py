"""Index migrations for the data stack: DynamoDB global secondary indexes changed without downtime.

CloudFormation (through DynamoDB's UpdateTable) refuses, on an existing table:
- more than ONE global secondary index created or deleted per table in one stack update
  ("Cannot perform more than one GSI creation or deletion in a single update");
- any change of an existing index's KeySchema or Projection (an index is created and deleted, never
  altered; only its throughput and contributor insights change in place);
- AttributeDefinitions other than exactly the attributes the table's and its indexes' keys use;
- a change of the table's own key or its local secondary indexes (that replaces the table).
`transition_problems` states these rules for one update; `plan` turns the deployed template and the
target into templates each one update apart, in two phases (expand/contract):

- EXPAND (deployed before `chalice deploy`, while the old code still reads the old indexes): the
  target template, except that every table keeps all its deployed indexes (also those the target
  drops) and gains the target's new ones, at most one per table per step (a step may add to
  several tables at once).
- CONTRACT (after `chalice deploy` and the backfills, once no code reads them): the indexes the
  target no longer has are deleted, one per table per step; the last step is the target itself.

THE CONVENTION: an index is never changed, it is replaced. To change an index's keys or projection,
give the changed index a NEW NAME (e.g. `owner-due` -> `owner-due-v2`) and point the code at it: the
deploy creates the new one before the new code starts and deletes the old one after. Changing an
index under the same name is refused by `plan` (it cannot be done without the views that read it
failing while the index is rebuilt). docs/DEPLOY.md, "Upgrades that change indexes".

    python -m infra.deploy index-plan --stage prod      # writes out/index-steps/{expand,contract}-N.json
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

TABLE_TYPE = "AWS::DynamoDB::Table"
#: What identifies an index for DynamoDB: these cannot change in place.
IMMUTABLE_INDEX_PARTS = ("KeySchema", "Projection")


class IndexMigrationRefused(ValueError):
    """The target cannot be reached from the deployed template without downtime (or at all)."""


@dataclass
class Plan:
    """The templates to deploy in order: `expand` before `chalice deploy`, `contract` after (its
    last one is the target). With no contract step the target itself follows the expand steps as
    the ordinary data stack deploy; an empty plan is the ordinary single deploy."""
    expand: List[Dict[str, Any]] = field(default_factory=list)
    contract: List[Dict[str, Any]] = field(default_factory=list)
    #: One line per step: what it creates or deletes.
    notes: List[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.expand and not self.contract

    def sequence(self, deployed: Mapping[str, Any], target: Mapping[str, Any]) -> List[Mapping[str, Any]]:
        """Every template the stack goes through, deployed first and target last."""
        tail = [] if self.contract else [target]
        return [deployed, *self.expand, *self.contract, *tail]


# --- reading templates ------------------------------------------------------------------------------


def tables(template: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """{logical id: the table's Properties} of every DynamoDB table of a template."""
    return {logical: resource.get("Properties") or {} for logical, resource in (template.get("Resources") or {}).items()
            if isinstance(resource, dict) and resource.get("Type") == TABLE_TYPE}


def indexes(table: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """{index name: definition} of a table's global secondary indexes."""
    return {gsi["IndexName"]: gsi for gsi in table.get("GlobalSecondaryIndexes") or []}


def _normal(part: Any) -> Any:
    """An index's KeySchema or Projection in a form where equal means equal to DynamoDB
    (NonKeyAttributes is a set; ProjectionType ALL/KEYS_ONLY carry none)."""
    if isinstance(part, dict) and "ProjectionType" in part:
        return (part["ProjectionType"], tuple(sorted(part.get("NonKeyAttributes") or [])))
    if isinstance(part, list):
        return tuple((k["AttributeName"], k["KeyType"]) for k in part)
    return part


def changed_in_place(before: Mapping[str, Any], after: Mapping[str, Any]) -> List[str]:
    """The IMMUTABLE_INDEX_PARTS that differ between two definitions of one index."""
    return [part for part in IMMUTABLE_INDEX_PARTS if _normal(before.get(part)) != _normal(after.get(part))]


def key_attributes(table: Mapping[str, Any]) -> List[str]:
    """The attributes the table's key, its global and its local secondary indexes use, in order of
    first use."""
    names: List[str] = []
    schemas = [table.get("KeySchema") or []]
    schemas += [gsi.get("KeySchema") or [] for gsi in table.get("GlobalSecondaryIndexes") or []]
    schemas += [lsi.get("KeySchema") or [] for lsi in table.get("LocalSecondaryIndexes") or []]
    for schema in schemas:
        for key in schema:
            if key["AttributeName"] not in names:
                names.append(key["AttributeName"])
    return names


def _types(table: Mapping[str, Any]) -> Dict[str, str]:
    return {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions") or []}


# --- the rules of one stack update ------------------------------------------------------------------


def transition_problems(before: Mapping[str, Any], after: Mapping[str, Any]) -> List[str]:
    """What AWS refuses when the data stack goes from template `before` to `after` in one update
    (see the module's docstring); [] when the update is allowed. Tables are matched by logical id;
    a table new in `after` is created whole (any number of indexes)."""
    problems: List[str] = []
    old_tables = tables(before)
    for logical, table in tables(after).items():
        problems += [f"{logical}: {p}" for p in attribute_definition_problems(table)]
        old = old_tables.get(logical)
        if old is None:
            continue
        if _normal(old.get("KeySchema")) != _normal(table.get("KeySchema")):
            problems.append(f"{logical}: the table's KeySchema changes (that replaces the table)")
        if _local_indexes_change(old, table):
            problems.append(f"{logical}: local secondary indexes change (only possible when the table is created)")
        old_gsis, new_gsis = indexes(old), indexes(table)
        created = sorted(set(new_gsis) - set(old_gsis))
        deleted = sorted(set(old_gsis) - set(new_gsis))
        if len(created) + len(deleted) > 1:
            problems.append(f"{logical}: {len(created)} index creation(s) {created} and {len(deleted)} deletion(s) "
                            f"{deleted} in one update (AWS allows one creation or deletion per table)")
        for name in sorted(set(old_gsis) & set(new_gsis)):
            parts = changed_in_place(old_gsis[name], new_gsis[name])
            if parts:
                problems.append(f"{logical}: index {name} changes its {' and '.join(parts)} in place")
        old_types, new_types = _types(old), _types(table)
        kept = set(key_attributes(old)) & set(key_attributes(table))
        for name in sorted(kept):
            if name in old_types and name in new_types and old_types[name] != new_types[name]:
                problems.append(f"{logical}: attribute {name} changes type {old_types[name]} -> {new_types[name]} "
                                "while a key keeps using it")
    return problems


def _local_indexes_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    before = {i["IndexName"]: i for i in old.get("LocalSecondaryIndexes") or []}
    after = {i["IndexName"]: i for i in new.get("LocalSecondaryIndexes") or []}
    return set(before) != set(after) or any(changed_in_place(before[n], after[n]) for n in before)


def attribute_definition_problems(table: Mapping[str, Any]) -> List[str]:
    """AttributeDefinitions must be exactly the key attributes (CloudFormation refuses unused ones,
    DynamoDB a key without its definition), each defined once."""
    defined = [a["AttributeName"] for a in table.get("AttributeDefinitions") or []]
    used = key_attributes(table)
    problems = []
    if len(defined) != len(set(defined)):
        problems.append(f"AttributeDefinitions define an attribute twice: {sorted(defined)}")
    if set(defined) - set(used):
        problems.append(f"AttributeDefinitions {sorted(set(defined) - set(used))} are used by no key")
    if set(used) - set(defined):
        problems.append(f"key attributes {sorted(set(used) - set(defined))} have no AttributeDefinitions")
    return problems


def sequence_problems(templates: Sequence[Mapping[str, Any]]) -> List[str]:
    """`transition_problems` of every consecutive pair, each prefixed with its step number."""
    return [f"step {i + 1}: {p}" for i in range(len(templates) - 1)
            for p in transition_problems(templates[i], templates[i + 1])]


# --- the planner ------------------------------------------------------------------------------------


def _refusals(deployed: Mapping[str, Any], target: Mapping[str, Any]) -> List[str]:
    """What no sequence of updates reaches without downtime: an index changed under its name, a
    table's key or local indexes changed, an attribute's type changed while keys on both sides use it."""
    refused = []
    old_tables = tables(deployed)
    for logical, table in tables(target).items():
        old = old_tables.get(logical)
        if old is None:
            continue
        old_gsis, new_gsis = indexes(old), indexes(table)
        for name in sorted(set(old_gsis) & set(new_gsis)):
            parts = changed_in_place(old_gsis[name], new_gsis[name])
            if parts:
                refused.append(
                    f"{logical}: index {name!r} changes its {' and '.join(parts)}. DynamoDB cannot change an index "
                    f"in place, and deleting and re-creating it under the same name would leave the views that read "
                    f"it failing until it is rebuilt. Give the changed index a new name (e.g. {name + '-v2'!r}) and "
                    f"point the code at it: the deploy creates it before the new code starts and deletes {name!r} "
                    f"after (docs/DEPLOY.md, \"Upgrades that change indexes\").")
        if _normal(old.get("KeySchema")) != _normal(table.get("KeySchema")):
            refused.append(f"{logical}: the table's own KeySchema changes: that needs a new table (a new logical id "
                           f"and name) and a copy of the data, not an index migration")
        if _local_indexes_change(old, table):
            refused.append(f"{logical}: local secondary indexes change: they exist only from the table's creation; "
                           f"use a global secondary index")
        old_types, new_types = _types(old), _types(table)
        for name in sorted(set(old_types) & set(new_types)):
            if old_types[name] != new_types[name]:
                refused.append(f"{logical}: attribute {name!r} changes type {old_types[name]} -> {new_types[name]}: "
                               f"an index keeps it while the other is built; give the new key attribute a new name")
    return refused


def with_indexes(table: Mapping[str, Any], gsis: Iterable[Mapping[str, Any]],
                 types: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """A copy of a table's Properties with these global secondary indexes and AttributeDefinitions
    rebuilt to exactly the key attributes (types from `types`, else the table's own)."""
    result = copy.deepcopy(dict(table))
    gsis = [copy.deepcopy(dict(g)) for g in gsis]
    if gsis:
        result["GlobalSecondaryIndexes"] = gsis
    else:
        result.pop("GlobalSecondaryIndexes", None)
    known = dict(_types(table))
    known.update(types or {})
    untyped = [name for name in key_attributes(result) if name not in known]
    if untyped:
        raise ValueError(f"key attributes {untyped} have no AttributeType")
    result["AttributeDefinitions"] = [{"AttributeName": name, "AttributeType": known[name]}
                                      for name in key_attributes(result)]
    return result


def plan(deployed: Optional[Mapping[str, Any]], target: Mapping[str, Any]) -> Plan:
    """The expand and contract templates from the deployed data stack's template to the target
    (see the module's docstring). No stack yet (`deployed` None), or nothing that needs more than
    one update: an empty plan. Raises IndexMigrationRefused for what cannot be done without downtime."""
    if deployed is None:
        return Plan()
    refused = _refusals(deployed, target)
    if refused:
        raise IndexMigrationRefused("the data stack's indexes cannot be migrated:\n  " + "\n  ".join(refused))
    old_tables, new_tables = tables(deployed), tables(target)
    added: Dict[str, List[str]] = {}
    dropped: Dict[str, List[str]] = {}
    for logical, table in new_tables.items():
        if logical not in old_tables:
            continue  # created whole, with all its indexes, in the first step
        old_gsis, new_gsis = indexes(old_tables[logical]), indexes(table)
        added[logical] = [name for name in new_gsis if name not in old_gsis]
        dropped[logical] = [name for name in old_gsis if name not in new_gsis]
    expand_count = max([len(v) for v in added.values()] + [0])
    contract_count = max([len(v) for v in dropped.values()] + [0])
    if expand_count <= 1 and contract_count == 0:
        return Plan()  # at most one creation per table: the target is one update away
    # A deletion always waits for the new code (contract), even alone: the old code reads the index.

    def step(created: int, deleted: int) -> Dict[str, Any]:
        """The target, each existing table having its first `created` new indexes and all but its
        first `deleted` dropped ones."""
        template = copy.deepcopy(dict(target))
        for logical, table in new_tables.items():
            if logical not in old_tables:
                continue
            old_gsis, new_gsis = indexes(old_tables[logical]), indexes(table)
            present = set(old_gsis) | set(added[logical][:created])
            kept = [new_gsis[name] for name in new_gsis if name in present]
            kept += [old_gsis[name] for name in dropped[logical][deleted:]]
            if [g["IndexName"] for g in kept] == list(new_gsis):
                properties = copy.deepcopy(table)  # as the target has it, verbatim
            else:
                types = dict(_types(old_tables[logical]))
                types.update(_types(table))
                properties = with_indexes(table, kept, types)
            template["Resources"][logical]["Properties"] = properties
        return template

    result = Plan()
    expand_steps = max(expand_count, 1) if contract_count else expand_count - 1
    for number in range(1, expand_steps + 1):
        result.expand.append(step(number, 0))
        result.notes.append(f"expand-{number}: " + _describe(added, number - 1, "create"))
    for number in range(1, contract_count + 1):
        result.contract.append(step(expand_count, number))
        result.notes.append(f"contract-{number}: " + _describe(dropped, number - 1, "delete"))
    if not result.contract:
        result.notes.append("then the target: " + _describe(added, expand_count - 1, "create"))
    if result.expand and _comparable(result.expand[0]) == _comparable(deployed):
        # Nothing but the later deletions: the first expand step is what is deployed already.
        result.expand.pop(0)
        result.notes.pop(0)
    return result


def _comparable(template: Mapping[str, Any]) -> Any:
    """A template with each table's index and attribute lists in name order (their order means
    nothing to CloudFormation's table update)."""
    copied = copy.deepcopy(dict(template))
    for table in tables(copied).values():
        for part, key in (("GlobalSecondaryIndexes", "IndexName"), ("AttributeDefinitions", "AttributeName")):
            if part in table:
                table[part] = sorted(table[part], key=lambda item: item[key])
    return copied


def _describe(names: Mapping[str, List[str]], position: int, verb: str) -> str:
    done = [f"{logical}.{found[position]}" for logical, found in sorted(names.items()) if len(found) > position]
    return f"{verb} {', '.join(done)}" if done else "the target's other changes, every index kept"


# --- the deployed template and the step files --------------------------------------------------------

#: Stack states in which nothing of the template is deployed: plan as for a fresh account.
NOTHING_DEPLOYED = ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS",
                    "DELETE_COMPLETE")


def deployed_template(cloudformation: Any, stack_name: str) -> Optional[Dict[str, Any]]:
    """The template the stack was last deployed with (`TemplateStage="Original"`), or None when
    there is no stack (or only a failed first creation). `cloudformation` is a boto3 client."""
    from botocore.exceptions import ClientError

    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    if stack.get("StackStatus") in NOTHING_DEPLOYED:
        return None
    body = cloudformation.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
    if isinstance(body, str):  # botocore decodes a JSON body itself; a string is JSON it did not
        try:
            body = json.loads(body)
        except ValueError as error:
            raise IndexMigrationRefused(f"{stack_name}'s template is not JSON: {error}") from error
    return dict(body)


def write_steps(result: Plan, directory: str) -> List[str]:
    """`expand-N.json` and `contract-N.json` (N from 1) into `directory`, after removing the step
    files of an earlier plan. Returns the paths written, in deploy order."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith(("expand-", "contract-")) and name.endswith(".json"):
            os.remove(os.path.join(directory, name))
    written = []
    for phase, templates in (("expand", result.expand), ("contract", result.contract)):
        for number, template in enumerate(templates, 1):
            path = os.path.join(directory, f"{phase}-{number}.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(template, handle, separators=(",", ":"))
            written.append(path)
    return written


def summary(result: Plan) -> Tuple[str, ...]:
    """What `index-plan` prints: one line per step, or that the deploy is the ordinary one."""
    if result.empty:
        return ("index migration: none (the data stack is deployed in one update)",)
    return tuple(f"index migration {note}" for note in result.notes)
