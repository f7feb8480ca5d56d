"""Output of the repository and change endpoints."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.repos.models import Change, ChangeStatus, ChangeVersion, Repository
from apps.repos.selectors import change_run_ids, clone_url


class RepositoryOutput(serializers.ModelSerializer):
    clone_url = serializers.SerializerMethodField(
        help_text="git's smart HTTP URL: basic auth with any username and an API token "
        "(or a run's token) as the password."
    )

    class Meta:
        model = Repository
        fields = ["id", "name", "default_branch", "clone_url", "created_at"]

    def get_clone_url(self, repo: Repository) -> str:
        # The address the caller used (context "base_url"), else the one sandboxes use.
        return clone_url(repo, base_url=self.context.get("base_url"))


class FileStatOutput(serializers.Serializer):
    path = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["added", "modified", "deleted", "renamed", "copied", "type_changed"]
    )
    additions = serializers.IntegerField(min_value=0)
    deletions = serializers.IntegerField(min_value=0)


class ChangeOutput(serializers.ModelSerializer):
    team = serializers.IntegerField(source="team_id")
    repo = serializers.IntegerField(source="repo_id")
    status = serializers.ChoiceField(choices=ChangeStatus.choices)
    agent = serializers.IntegerField(source="agent_id")
    thread = serializers.IntegerField(source="thread_id", allow_null=True)
    runs = serializers.SerializerMethodField(help_text="The runs that produced its versions.")
    files = serializers.SerializerMethodField(help_text="The newest version's files.")

    class Meta:
        model = Change
        fields = [
            "id", "team", "repo", "title", "branch", "base", "status", "version", "head",
            "agent", "thread", "runs", "files", "created_at", "updated_at",
        ]  # fmt: skip

    def get_runs(self, change: Change) -> list[int]:
        return change_run_ids(change)

    @extend_schema_field(FileStatOutput(many=True))
    def get_files(self, change: Change) -> list[dict[str, Any]]:
        versions = sorted(change.versions.all(), key=lambda v: v.number)
        return list(versions[-1].files) if versions else []


class ChangeVersionOutput(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number")
    run = serializers.IntegerField(source="run_id", allow_null=True)
    base = serializers.CharField(
        source="base_sha", help_text="The base commit it is diffed against."
    )
    files = FileStatOutput(many=True)

    class Meta:
        model = ChangeVersion
        fields = ["version", "head", "base", "run", "files", "created_at"]


class MergeConflictOutput(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    conflicts = serializers.ListField(
        child=serializers.CharField(), help_text="The paths that conflict."
    )
