"""Index migrations (infra/index_migration.py): the data stack's global secondary indexes change
without downtime and within what one CloudFormation update of a DynamoDB table may do; backfills
(infra/backfills.py) give existing items a new index's key; `make deploy` runs the expand steps
before `chalice deploy`, the backfills and contract steps after it."""
from __future__ import annotations

import copy
import json
import os
import stat
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import backfills, deploy
from infra import index_migration as im

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- small templates ----------------------------------------------------------------------------------


def gsi(name, hash_key, range_key=None, projection="KEYS_ONLY", extra=()):
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
    shown = {"ProjectionType": projection}
    if projection == "INCLUDE":
        shown["NonKeyAttributes"] = list(extra)
    return {"IndexName": name, "KeySchema": keys, "Projection": shown}


def table(*gsis, key="id"):
    properties = {"TableName": {"Fn::Sub": "socialinbox-${Stage}-things"}, "BillingMode": "PAY_PER_REQUEST",
                  "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                  "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}]}
    types = {k["AttributeName"]: "S" for g in gsis for k in g["KeySchema"]}
    return {"Type": im.TABLE_TYPE, "DeletionPolicy": "Retain", "Properties": im.with_indexes(properties, gsis, types)}


def template(**tables):
    resources = {name: copy.deepcopy(t) for name, t in tables.items()}
    resources["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Parameters": {"Stage": {"Type": "String", "Default": "qa"}},
            "Resources": resources}


def names(step, logical="Things"):
    return sorted(im.indexes(step["Resources"][logical]["Properties"]))


def assert_valid(plan, deployed, target):
    sequence = plan.sequence(deployed, target)
    assert im.sequence_problems(sequence) == []
    assert sequence[-1] == target
    return sequence


OWNER = gsi("by-owner", "owner", "due")
TEAM = gsi("by-team", "team", "due")
RECENT = gsi("by-recent", "team", "last_at", "INCLUDE", ["subject", "preview"])
DEADLINE = gsi("by-deadline", "team", "deadline")


# --- the rules of one update (the validator) ----------------------------------------------------------


@pytest.mark.parametrize("before, after, problem", [
    (table(OWNER), table(OWNER, TEAM, RECENT), "2 index creation(s)"),
    (table(OWNER, TEAM), table(RECENT), "1 index creation(s) ['by-recent'] and 2 deletion(s)"),
    (table(OWNER), table(TEAM), "1 index creation(s) ['by-team'] and 1 deletion(s) ['by-owner']"),
    (table(OWNER), table(gsi("by-owner", "owner")), "index by-owner changes its KeySchema in place"),
    (table(RECENT), table(gsi("by-recent", "team", "last_at", "INCLUDE", ["subject"])),
     "index by-recent changes its Projection in place"),
    (table(OWNER), table(OWNER, key="other"), "the table's KeySchema changes"),
], ids=["two creations", "creation and deletions", "a rename", "key changed", "projection changed", "table key"])
def test_the_validator_refuses_what_aws_refuses_in_one_update(before, after, problem):
    problems = im.transition_problems(template(Things=before), template(Things=after))
    assert any(problem in p for p in problems), problems


def test_attribute_definitions_must_be_exactly_the_key_attributes():
    unused = table(OWNER)
    unused["Properties"]["AttributeDefinitions"].append({"AttributeName": "team", "AttributeType": "S"})
    [problem] = im.transition_problems(template(Things=table(OWNER)), template(Things=unused))
    assert "['team'] are used by no key" in problem
    missing = table(OWNER, TEAM)
    missing["Properties"]["AttributeDefinitions"] = [a for a in missing["Properties"]["AttributeDefinitions"]
                                                    if a["AttributeName"] != "team"]
    [problem] = im.transition_problems(template(Things=table(OWNER)), template(Things=missing))
    assert "['team'] have no AttributeDefinitions" in problem


def test_the_validator_allows_what_one_update_does():
    same_projection = table(gsi("by-recent", "team", "last_at", "INCLUDE", ["preview", "subject"]))
    for before, after in [(table(OWNER), table(OWNER, TEAM)), (table(OWNER, TEAM), table(TEAM)),
                          (table(RECENT), same_projection), (table(OWNER), table(OWNER))]:
        assert im.transition_problems(template(Things=before), template(Things=after)) == []
    # A new table is created whole, with any number of indexes; several tables change at once.
    assert im.transition_problems(template(), template(Things=table(OWNER, TEAM, RECENT))) == []
    assert im.transition_problems(template(A=table(OWNER), B=table()),
                                  template(A=table(OWNER, TEAM), B=table(RECENT))) == []


def test_the_real_data_stack_keeps_the_rules():
    from chalicelib.local import stack

    rendered = stack.render()
    assert im.transition_problems(rendered, rendered) == []
    assert im.tables(rendered)  # tables were found and checked


# --- the planner ------------------------------------------------------------------------------------------


def test_no_stack_yet_or_nothing_changed_is_the_ordinary_deploy():
    target = template(Things=table(OWNER, TEAM))
    assert im.plan(None, target).empty
    assert im.plan(target, target).empty


def test_one_new_index_per_table_is_one_update_so_no_steps():
    deployed = template(A=table(OWNER), B=table())
    target = template(A=table(OWNER, TEAM), B=table(RECENT))
    plan = im.plan(deployed, target)
    assert plan.empty
    assert_valid(plan, deployed, target)


def test_new_indexes_come_one_per_table_per_step_before_the_target():
    deployed = template(A=table(OWNER), B=table())
    target = template(A=table(OWNER, TEAM, RECENT, DEADLINE), B=table(RECENT, DEADLINE))
    plan = im.plan(deployed, target)
    assert len(plan.expand) == 2 and plan.contract == []  # the target itself is the third update
    first, second = plan.expand
    assert names(first, "A") == ["by-owner", "by-team"] and names(first, "B") == ["by-recent"]
    assert names(second, "A") == ["by-owner", "by-recent", "by-team"] and names(second, "B") == sorted(
        ["by-recent", "by-deadline"])
    assert_valid(plan, deployed, target)


def test_renaming_a_changed_index_creates_the_new_one_before_the_code_and_drops_the_old_after():
    """The convention: `by-recent` gets a new projection as `by-recent-v2`."""
    deployed = template(Things=table(OWNER, RECENT))
    v2 = gsi("by-recent-v2", "team", "last_at", "INCLUDE", ["subject", "preview", "tags"])
    target = template(Things=table(OWNER, v2))
    plan = im.plan(deployed, target)
    [expand], [contract] = plan.expand, plan.contract
    assert names(expand) == ["by-owner", "by-recent", "by-recent-v2"]  # the old code still has by-recent
    assert contract == target
    assert_valid(plan, deployed, target)
    assert plan.notes == ["expand-1: create Things.by-recent-v2", "contract-1: delete Things.by-recent"]


def test_a_deletion_alone_waits_for_the_new_code():
    """The old code reads the index until `chalice deploy`: it is deleted by a contract step, and
    the target's other changes go before the code."""
    deployed = template(Things=table(OWNER, TEAM))
    target = template(Things=table(TEAM))
    target["Resources"]["NewQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    plan = im.plan(deployed, target)
    [expand], [contract] = plan.expand, plan.contract
    assert names(expand) == ["by-owner", "by-team"] and "NewQueue" in expand["Resources"]
    assert contract == target
    assert_valid(plan, deployed, target)
    # With nothing else changed the expand step would be the deployed template: it is left out.
    bare = im.plan(deployed, template(Things=table(TEAM)))
    assert bare.expand == [] and len(bare.contract) == 1


def test_deletions_go_one_per_table_per_step_the_last_being_the_target():
    deployed = template(Things=table(OWNER, TEAM, RECENT, DEADLINE))
    target = template(Things=table(TEAM))
    plan = im.plan(deployed, target)
    assert len(plan.contract) == 3 and plan.contract[-1] == target
    assert [len(names(step)) for step in plan.contract] == [3, 2, 1]
    assert_valid(plan, deployed, target)


@pytest.mark.parametrize("changed, part", [
    (gsi("by-recent", "team", "last_at", "INCLUDE", ["subject", "preview", "tags"]), "Projection"),
    (gsi("by-recent", "owner", "last_at", "INCLUDE", ["subject", "preview"]), "KeySchema"),
    (gsi("by-recent", "team", "last_at", "ALL"), "Projection"),
])
def test_an_index_changed_under_its_name_is_refused_with_the_convention(changed, part):
    deployed = template(Things=table(OWNER, RECENT))
    with pytest.raises(im.IndexMigrationRefused) as refused:
        im.plan(deployed, template(Things=table(OWNER, changed)))
    message = str(refused.value)
    assert f"index 'by-recent' changes its {part}" in message
    assert "new name (e.g. 'by-recent-v2')" in message and "Upgrades that change indexes" in message


def test_a_key_attribute_changing_type_is_refused():
    deployed = template(Things=table(gsi("by-n", "rank")))
    target = template(Things=table(gsi("by-n-v2", "rank")))
    target["Resources"]["Things"]["Properties"]["AttributeDefinitions"][1]["AttributeType"] = "N"
    with pytest.raises(im.IndexMigrationRefused, match="'rank' changes type S -> N"):
        im.plan(deployed, target)


def test_steps_define_exactly_the_attributes_their_keys_use():
    """A dropped index's attributes stay defined while it exists, and go with it."""
    deployed = template(Things=table(gsi("by-a", "a"), gsi("by-b", "b")))
    target = template(Things=table(gsi("by-c", "c"), gsi("by-d", "d")))
    plan = im.plan(deployed, target)
    for step in plan.sequence(deployed, target):
        properties = step["Resources"]["Things"]["Properties"]
        defined = sorted(a["AttributeName"] for a in properties["AttributeDefinitions"])
        assert defined == sorted(im.key_attributes(properties))
    assert_valid(plan, deployed, target)


def test_this_releases_index_changes_migrate_in_valid_steps():
    """This release against the one before: `team-recent` (another projection) and `team-due` (a
    new key, `deadline`) replaced by `team-latest` and `team-deadline` under new names, as the
    convention wants, and a new `profile-due` on contacts."""
    from chalicelib.local import stack

    target = stack.render()
    deployed = copy.deepcopy(target)
    conversations = deployed["Resources"]["ConversationsTable"]["Properties"]
    current = im.indexes(conversations)
    assert {"team-latest", "team-deadline"} <= set(current) and not {"team-recent", "team-due"} & set(current)
    recent = copy.deepcopy(current["team-latest"])
    recent["IndexName"] = "team-recent"
    recent["Projection"]["NonKeyAttributes"] = sorted(
        set(recent["Projection"]["NonKeyAttributes"]) - {"due_sort", "contact_followers"} | {"reply_due_at", "snoozed_until"})
    due = copy.deepcopy(current["team-deadline"])
    due["IndexName"], due["KeySchema"][1]["AttributeName"] = "team-due", "due_sort"
    before = [g for name, g in current.items() if name not in ("team-latest", "team-deadline")] + [recent, due]
    conversations.update(im.with_indexes(conversations, before))
    contacts = deployed["Resources"]["ContactsTable"]["Properties"]
    contacts.update(im.with_indexes(contacts, []))
    plan = im.plan(deployed, target)
    assert (len(plan.expand), len(plan.contract)) == (2, 2)
    sequence = assert_valid(plan, deployed, target)
    for step in plan.expand:  # the old code's indexes, all there until the new code runs
        assert {"team-recent", "team-due"} <= set(im.indexes(step["Resources"]["ConversationsTable"]["Properties"]))
    last = plan.expand[-1]["Resources"]
    assert {"team-latest", "team-deadline"} <= set(im.indexes(last["ConversationsTable"]["Properties"]))
    assert "profile-due" in im.indexes(last["ContactsTable"]["Properties"])
    assert all(len(json.dumps(step)) < 1_000_000 for step in sequence)  # through the bucket: 1 MB


# --- property: any old and new index sets -------------------------------------------------------------

ATTRIBUTES = ["a", "b", "c", "d"]
INDEX_NAMES = ["i0", "i1", "i2", "i3", "i4", "i5"]
definitions = st.builds(lambda h, r, p: gsi("?", h, r, p, ["x"] if p == "INCLUDE" else ()),
                        st.sampled_from(ATTRIBUTES), st.none() | st.sampled_from(ATTRIBUTES),
                        st.sampled_from(["KEYS_ONLY", "ALL", "INCLUDE"])).filter(
    lambda g: len({k["AttributeName"] for k in g["KeySchema"]}) == len(g["KeySchema"]))
index_sets = st.dictionaries(st.sampled_from(INDEX_NAMES), definitions, max_size=6)


def _named(indexes):
    return [dict(g, IndexName=name) for name, g in sorted(indexes.items())]


@st.composite
def migrations(draw):
    """Old and new index sets of up to three tables; a name on both sides keeps its definition
    unless `changed` (which the planner must refuse)."""
    tables_before, tables_after, changed = {}, {}, False
    for logical in draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=3, unique=True)):
        old, new = draw(index_sets), draw(index_sets)
        for name in set(old) & set(new):
            if draw(st.booleans()) or im.changed_in_place(old[name], new[name]) == []:
                new[name] = old[name]
            else:
                changed = True
        tables_before[logical] = table(*_named(old))
        tables_after[logical] = table(*_named(new))
    if draw(st.booleans()):  # a table only the target has
        tables_after["D"] = table(*_named(draw(index_sets)))
    return template(**tables_before), template(**tables_after), changed


@given(migrations())
def test_any_index_change_is_planned_in_valid_steps_without_downtime_or_refused(migration):
    deployed, target, changed = migration
    if changed:
        with pytest.raises(im.IndexMigrationRefused, match="Give the changed index a new name"):
            im.plan(deployed, target)
        return
    plan = im.plan(deployed, target)
    sequence = assert_valid(plan, deployed, target)
    old_tables, new_tables = im.tables(deployed), im.tables(target)
    for step in [deployed, *plan.expand]:  # the old code's indexes stay until chalice deploy
        for logical, properties in im.tables(step).items():
            if logical in old_tables:
                assert set(im.indexes(old_tables[logical])) <= set(im.indexes(properties))
    for step in [*plan.contract, *([] if plan.contract else [target])]:  # the new code's are all there
        for logical, properties in im.tables(step).items():
            assert set(im.indexes(new_tables[logical])) <= set(im.indexes(properties))
    # As few updates as AWS allows: one per index added or dropped on the busiest table.
    adds = max([len(set(im.indexes(new_tables[t])) - set(im.indexes(old_tables[t])))
                for t in old_tables if t in new_tables] + [0])
    drops = max([len(set(im.indexes(old_tables[t])) - set(im.indexes(new_tables[t])))
                 for t in old_tables if t in new_tables] + [0])
    assert len(sequence) - 1 <= max(adds, 1) + drops
    # No steps exactly when AWS takes the target in one update and no index the old code reads goes.
    assert plan.empty == (im.transition_problems(deployed, target) == [] and drops == 0)


# --- backfills (moto's DynamoDB) --------------------------------------------------------------------------

STAGE = "bf"


@pytest.fixture
def items_table(aws_backend):
    """A table of the stage `bf` with 25 items: 10 with a `due` and no `deadline`, 5 with both, 10
    with neither (the conftest backend removes it after the test)."""
    from chalicelib import aws

    client = aws.client("dynamodb")
    name = backfills.table_name(STAGE, "items")
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    for number in range(25):
        item = {"id": {"S": f"item-{number:02d}"}}
        if number < 15:
            item["due"] = {"N": str(1000 + number)}
        if 10 <= number < 15:
            item["deadline"] = {"S": "kept"}
        client.put_item(TableName=name, Item=item)
    return client, name


def deadline_of(item):
    return None if "due" not in item else f"d{int(item['due'])}"


DEADLINE_FILL = backfills.Backfill("items", "deadline", deadline_of, reads=("due",))


def _all(client, name):
    return {i["id"]["S"]: i for i in client.scan(TableName=name)["Items"]}


def test_a_backfill_sets_the_attribute_on_items_without_it_only(items_table):
    client, name = items_table
    before = _all(client, name)
    lines = []
    counts = backfills.run(client, STAGE, DEADLINE_FILL, page_size=7, report=lines.append)
    after = _all(client, name)
    assert (counts.scanned, counts.updated, counts.present, counts.skipped, counts.pages) == (25, 10, 5, 10, 4)
    for number in range(25):
        key = f"item-{number:02d}"
        if number < 10:
            assert after[key]["deadline"] == {"S": f"d{1000 + number}"}
            assert {k: v for k, v in after[key].items() if k != "deadline"} == before[key]
        else:  # had it already, or nothing to compute it from: untouched
            assert after[key] == before[key]
    assert lines[-1] == counts.line("items.deadline") and "updated 10" in lines[-1]
    again = backfills.run(client, STAGE, DEADLINE_FILL, report=lines.append)
    assert (again.updated, again.present, again.skipped) == (0, 15, 10)  # a re-run changes nothing
    assert _all(client, name) == after


def test_an_item_the_application_changes_meanwhile_is_computed_from_its_new_state(items_table):
    """The scan read `due` 1000; the new code then sets due 5000 (without a deadline, as old code
    still running would): the update refuses, the item is read again and gets d5000."""
    client, name = items_table
    changed = []

    def racing(item):
        if item["id"] == "item-00" and not changed:
            client.put_item(TableName=name, Item={"id": {"S": "item-00"}, "due": {"N": "5000"}})
            changed.append(True)
        return deadline_of(item)

    counts = backfills.run(client, STAGE, backfills.Backfill("items", "deadline", racing, reads=("due",)))
    assert _all(client, name)["item-00"]["deadline"] == {"S": "d5000"}
    assert counts.retried == 1 and counts.updated == 10


def test_an_interrupted_backfill_resumes_from_its_checkpoint(items_table, tmp_path):
    client, name = items_table
    seen = []

    def failing(item):
        seen.append(item["id"])
        if len(seen) == 7:  # item-06, on the second page
            raise RuntimeError("interrupted")
        return deadline_of(item)

    path = backfills.checkpoint_path(str(tmp_path), STAGE, DEADLINE_FILL)
    with pytest.raises(RuntimeError, match="interrupted"):
        backfills.run(client, STAGE, backfills.Backfill("items", "deadline", failing, ("due",)), page_size=5,
                      checkpoint=path)
    assert os.path.exists(path)  # saved after the first page
    counts = backfills.run(client, STAGE, DEADLINE_FILL, page_size=5, checkpoint=path, report=lambda line: None)
    # From the second page on: item-05 was done before item-06 failed, 06-09 are left.
    assert counts.resumed and (counts.scanned, counts.updated, counts.present) == (20, 4, 6)
    assert not os.path.exists(path)
    done = _all(client, name)
    assert all(done[f"item-{n:02d}"]["deadline"] == {"S": f"d{1000 + n}"} for n in range(10))


def test_the_page_size_is_bounded(items_table):
    client, _ = items_table
    for size in (0, backfills.MAX_PAGE_SIZE + 1):
        with pytest.raises(ValueError, match="page size"):
            backfills.run(client, STAGE, DEADLINE_FILL, page_size=size)


def test_the_backfill_command_runs_the_registry(aws_backend, capsys, tmp_path, monkeypatch):
    assert [b.name for b in backfills.BACKFILLS] == ["conversations.deadline"]  # this release's
    monkeypatch.setattr(backfills, "BACKFILLS", [])  # between migrations
    assert deploy.main(["backfill", "--stage", STAGE, "--checkpoints", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "backfill: none registered"
    assert deploy.main(["backfill", "--stage", "local"]) == 2


def test_run_all_runs_each_registered_backfill_with_its_checkpoint(items_table, tmp_path):
    client, name = items_table
    done = backfills.run_all(client, STAGE, [DEADLINE_FILL], checkpoints=str(tmp_path), report=lambda line: None)
    assert done["items.deadline"].updated == 10 and os.listdir(tmp_path) == []


# --- `python -m infra.deploy index-plan` against moto's CloudFormation ------------------------------------


def _stack(stage, body):
    """A data stack deployed with `body` (moto creates its table)."""
    import boto3

    boto3.client("cloudformation").create_stack(StackName=deploy.data_stack_name(stage), TemplateBody=json.dumps(body))


def _write(path, body):
    path.write_text(json.dumps(body))
    return str(path)


def test_index_plan_reads_the_deployed_template_and_writes_the_steps(aws_backend, tmp_path, capsys):
    deployed = template(Things=table(OWNER, RECENT))
    target = template(Things=table(OWNER, TEAM, DEADLINE))
    _stack("qa", deployed)
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "expand-3.json").write_text("{}")  # an earlier plan's: never deployed again
    assert deploy.main(["index-plan", "--stage", "qa", "--template", _write(tmp_path / "t.json", target),
                        "--out", str(steps)]) == 0
    assert sorted(os.listdir(steps)) == ["contract-1.json", "expand-1.json", "expand-2.json"]
    written = [json.loads((steps / name).read_text()) for name in ("expand-1.json", "expand-2.json", "contract-1.json")]
    assert written == im.plan(deployed, target).expand + im.plan(deployed, target).contract
    assert written[-1] == target
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["index migration expand-1: create Things.by-team", "index migration expand-2: create "
                       "Things.by-deadline", "index migration contract-1: delete Things.by-recent"]


def test_index_plan_without_a_stack_or_an_index_change_writes_nothing(aws_backend, tmp_path, capsys):
    target = _write(tmp_path / "t.json", template(Things=table(OWNER, TEAM)))
    assert deploy.main(["index-plan", "--stage", "qa", "--template", target, "--out", str(tmp_path / "s")]) == 0
    assert os.listdir(tmp_path / "s") == []
    _stack("qa", template(Things=table(OWNER)))
    assert deploy.main(["index-plan", "--stage", "qa", "--template", target, "--out", str(tmp_path / "s")]) == 0
    assert os.listdir(tmp_path / "s") == []
    assert capsys.readouterr().out.splitlines() == ["index migration: none (the data stack is deployed in one update)"] * 2


def test_index_plan_refuses_an_index_changed_under_its_name(aws_backend, tmp_path, capsys):
    _stack("qa", template(Things=table(RECENT)))
    changed = template(Things=table(gsi("by-recent", "team", "last_at", "ALL")))
    assert deploy.main(["index-plan", "--stage", "qa", "--template", _write(tmp_path / "t.json", changed),
                        "--out", str(tmp_path / "s")]) == 2
    assert "Give the changed index a new name" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # and make stops there


# --- `make deploy`: the order of the commands, run with a fake AWS CLI ------------------------------------


def _dry_run(*variables):
    result = subprocess.run(["make", "-n", "deploy", "STAGE=qa", *variables], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.replace("\\\n", " ").splitlines()


def test_make_deploy_plans_expands_before_the_code_and_contracts_after_the_backfills():
    text = "\n".join(_dry_run())
    steps = ["infra.deploy index-plan --stage qa --template out/resources.json --out out/index-steps",
             "--template-file out/index-steps/expand-$n.json", "--template-file out/resources.json",
             "describe-stacks --stack-name socialinbox-qa-data", "chalice deploy --stage qa",
             "infra.deploy backfill --stage qa", "--template-file out/index-steps/contract-$n.json", "curl -fsS"]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))


def test_each_step_is_deployed_with_the_same_command_as_the_target():
    commands = [c for c in _dry_run("ALARM_EMAIL=ops@example.com") if "cloudformation deploy" in c]
    deploys = [c[c.index("cloudformation deploy"):].split(";")[0].split(" || ")[0].split() for c in commands]
    assert len(deploys) == 3  # expand steps, the target, contract steps

    def without_template(words):
        at = words.index("--template-file")
        return sorted(words[:at] + words[at + 2:])

    assert without_template(deploys[0]) == without_template(deploys[1]) == without_template(deploys[2])
    assert "AlarmEmail=ops@example.com" in deploys[0]


FAKE_AWS = """#!/bin/sh
case "$*" in *"$FAIL_ON"*) failing=1;; esac
while [ $# -gt 0 ]; do [ "$1" = --template-file ] && echo "$2" >> "$LOG"; shift; done
exit ${failing:-0}
"""


@pytest.mark.parametrize("files, deployed", [
    ([], ["out/resources.json"]),
    (["expand-1", "expand-2"], ["out/index-steps/expand-1.json", "out/index-steps/expand-2.json",
                                "out/resources.json"]),
    (["expand-1", "contract-1", "contract-2"], ["out/index-steps/expand-1.json", "out/index-steps/contract-1.json",
                                                "out/index-steps/contract-2.json"]),
], ids=["no plan: one deploy", "expand only", "expand and contract"])
def test_the_recipe_deploys_the_step_files_in_order(tmp_path, files, deployed):
    """The data stack lines of `make deploy`'s recipe, run by the shell in a directory holding the
    step files, with AWS and the Python tool faked: what is deployed, in which order."""
    lines = _recipe_lines(tmp_path)
    (tmp_path / "out" / "index-steps").mkdir(parents=True)
    for name in files:
        (tmp_path / "out" / "index-steps" / f"{name}.json").write_text("{}")
    log = tmp_path / "log"
    for line in lines:
        result = subprocess.run(["sh", "-c", line], cwd=tmp_path, env={"PATH": os.environ["PATH"], "LOG": str(log),
                                                                        "FAIL_ON": "never"}, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    assert log.read_text().split() == deployed


def test_a_failed_step_stops_the_deploy(tmp_path):
    lines = _recipe_lines(tmp_path)
    (tmp_path / "out" / "index-steps").mkdir(parents=True)
    for name in ("expand-1", "expand-2"):
        (tmp_path / "out" / "index-steps" / f"{name}.json").write_text("{}")
    log = tmp_path / "log"
    env = {"PATH": os.environ["PATH"], "LOG": str(log), "FAIL_ON": "expand-1.json"}
    result = subprocess.run(["sh", "-c", lines[0]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert log.read_text().split() == ["out/index-steps/expand-1.json"]


def _recipe_lines(tmp_path):
    """The expand, target and contract lines of `make -n deploy` with ./aws and ./py as the tools."""
    for name, body in (("aws", FAKE_AWS), ("py", "#!/bin/sh\necho artefacts-bucket\n")):
        path = tmp_path / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    commands = _dry_run("AWS=./aws", "PY=./py")
    lines = [c for c in commands if "cloudformation deploy" in c]
    assert len(lines) == 3
    return lines


# --- the rehearsal: moto's table updates follow AWS's index rules ------------------------------------------


def test_the_rehearsals_emulator_refuses_what_aws_refuses_and_applies_the_rest():
    """moto's CloudFormation ignores table updates; with the rehearsal's workaround (infra/moto_gaps.py,
    `table-updates`) an update creating two indexes on one table fails as on AWS, and one creation
    reaches the table. In a process of its own: the workaround changes moto for its process."""
    import sys

    script = """
import json, os
os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="eu-west-1")
import boto3
from moto import mock_aws
from infra import moto_gaps
from tests.test_index_migration import template, table, OWNER, TEAM, RECENT
moto_gaps.apply_workarounds()
with mock_aws():
    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName="s", TemplateBody=json.dumps(template(Things=table(OWNER))))
    try:
        cfn.update_stack(StackName="s", TemplateBody=json.dumps(template(Things=table(OWNER, TEAM, RECENT))))
        refused = ""
    except Exception as error:
        refused = str(error)
    two = sorted(i["IndexName"] for i in boto3.client("dynamodb").describe_table(TableName="socialinbox-qa-things")
                 ["Table"].get("GlobalSecondaryIndexes", []))
    cfn.update_stack(StackName="s", TemplateBody=json.dumps(template(Things=table(OWNER, TEAM))))
    one = sorted(i["IndexName"] for i in boto3.client("dynamodb").describe_table(TableName="socialinbox-qa-things")
                 ["Table"]["GlobalSecondaryIndexes"])
print(json.dumps([refused, two, one]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    refused, two, one = json.loads(result.stdout.strip().splitlines()[-1])
    assert "2 index creation(s)" in refused and two == ["by-owner"]  # the refused update changed nothing
    assert one == ["by-owner", "by-team"]


def test_the_rehearsals_older_stack_is_one_valid_update_from_the_current_one_and_back_by_the_plan():
    from chalicelib.local import stack
    from infra import rehearsal

    current = stack.render()
    older = rehearsal.older_template(current)
    assert im.transition_problems(current, older) == []  # what the first deploy installs, as AWS would
    plan = im.plan(older, current)
    assert (len(plan.expand), len(plan.contract)) == (1, 1)
    assert_valid(plan, older, current)


def test_local_indexes_cannot_change_after_the_table_is_created():
    with_local = table(OWNER)
    with_local["Properties"]["LocalSecondaryIndexes"] = [
        {"IndexName": "by-id-due", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"},
                                                 {"AttributeName": "due", "KeyType": "RANGE"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}}]
    assert any("local secondary indexes change" in p
               for p in im.transition_problems(template(Things=table(OWNER)), template(Things=with_local)))
    with pytest.raises(im.IndexMigrationRefused, match="local secondary indexes change"):
        im.plan(template(Things=table(OWNER)), template(Things=with_local))
    assert im.plan(template(Things=with_local), template(Things=with_local)).empty
