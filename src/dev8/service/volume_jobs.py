"""Helper-container jobs, built, run and checked one way by every service that works on
volumes (backups, restores, snapshots, volumes, doctor)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from dev8.core.errors import ImageNotFound, InvalidInput, ProviderError
from dev8.core.images import helper_image
from dev8.core.naming import VOLUME_MOUNTS, volume_name
from dev8.core.workspace import Workspace
from dev8.providers.base import (
    HelperJob,
    HelperMount,
    HelperResult,
    Provider,
    VolumeAccess,
    volume_access,
)

LineHandler = Callable[[str], None]


def helper_image_id(provider: Provider) -> str:
    reference = helper_image()
    try:
        return provider.image_id(reference)
    except ImageNotFound as exc:
        raise ImageNotFound(
            f"the helper image {reference} is not on this engine; build it with `dev8 image build`"
        ) from exc


def role_mounts(
    workspace_id: str, roles: Iterable[str], *, writable: bool = False
) -> tuple[HelperMount, ...]:
    """The workspace's volumes at the paths the workspace sees them (``/home/dev8``...)."""
    return tuple(
        HelperMount(
            VOLUME_MOUNTS[role], volume=volume_name(workspace_id, role), read_only=not writable
        )
        for role in roles
    )


def _check_confined(
    purpose: str, mounts: tuple[HelperMount, ...], network: bool, stdin: bytes | None
) -> None:
    """A helper that can write a workspace's volume gets no secrets (``stdin``), no network
    and no writable host directory: what the member planted in the volume can then reach
    nothing but the volume itself."""
    writes_volume = any(mount.volume and not mount.read_only for mount in mounts)
    writes_host = any(mount.host_path and not mount.read_only for mount in mounts)
    if writes_volume and (network or stdin is not None or writes_host):
        raise ValueError(f"the {purpose} helper would write a volume with more than it needs")


class VolumeJobs:
    """Helper containers of one owner: the job built once, run, and checked.

    ``capability`` says what the caller needs the provider for ("run backups"); a provider
    without helper containers is refused with it when the first job runs.
    """

    def __init__(self, provider: Provider, owner: str, capability: str) -> None:
        self.provider = provider
        self.owner = owner
        self.capability = capability
        self._image: str | None = None

    @property
    def access(self) -> VolumeAccess:
        return volume_access(self.provider, self.capability)

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = helper_image_id(self.provider)
        return self._image

    def job(
        self,
        scope: Workspace | str,
        purpose: str,
        argv: Sequence[str],
        mounts: Iterable[HelperMount] = (),
        *,
        env: Mapping[str, str] | None = None,
        network: bool = False,
        stdin: bytes | None = None,
    ) -> HelperJob:
        """A job for ``scope``: a workspace, or the id of helpers that serve several
        (``volumes``, ``repository``)."""
        mounts = tuple(mounts)
        _check_confined(purpose, mounts, network, stdin)
        if isinstance(scope, Workspace):
            workspace_id, owner = scope.id, scope.owner
        else:
            workspace_id, owner = scope, self.owner
        return HelperJob(
            workspace_id=workspace_id,
            owner=owner,
            purpose=purpose,
            image=self.image,
            argv=list(argv),
            mounts=mounts,
            env=dict(env or {}),
            network=network,
            stdin=stdin,
        )

    def check_ready(self, *, host_paths: bool = False) -> None:
        """Refuse now what would fail at the first job: a provider without helpers, no
        helper image, or (``host_paths``, for archives) an engine that cannot see this
        machine's files."""
        if host_paths and not self.access.host_paths_visible():
            raise InvalidInput(
                "backups and restores need the Docker engine on this machine (DOCKER_HOST "
                "points at another one, which cannot see this machine's files)"
            )
        self._image = self._image or helper_image_id(self.provider)

    def run(self, job: HelperJob, on_line: LineHandler | None = None) -> HelperResult:
        return self.access.run_helper(job, on_line)

    def run_checked(
        self,
        job: HelperJob,
        failure: str,
        on_line: LineHandler | None = None,
        explain: Callable[[HelperResult], str] = HelperResult.error_tail,
    ) -> HelperResult:
        """Run ``job``; a non-zero exit is a ``ProviderError`` "``failure``: why"."""
        result = self.run(job, on_line)
        if result.exit_code != 0:
            raise ProviderError(f"{failure}: {explain(result)}")
        return result

    def remove_stale(self, workspace_id: str) -> None:
        """Remove helpers a killed `dev8` command left behind for this workspace."""
        self.access.remove_stale_helpers(workspace_id)
