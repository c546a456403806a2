"""The console's Models page: trained versions per kind with their offline metrics and
charts over time, "train now" with a live progress bar, activation and rollback, and
the editor of the shop's event weights and decay half-life.

Each view: one access function, one selector or service, one screen (or one of its
partials for htmx). Reading needs the viewer role; training and the learning settings
the merchandiser role; activation and rollback, which change what every shopper is
served, the admin role.

Regions of console/models/models.html: ``training`` (the progress of the runs one
"train now" asked for; it polls itself every second until they finish, then fires
``models-changed``) and ``registry`` (the kinds and the selected kind's versions; it
reloads on ``models-changed``).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from catalog.access import access_shop, console_view, role_at_least
from catalog.audit import Actor
from catalog.console import HtmxHttpRequest, render_screen
from catalog.models import Membership
from catalog.shop_settings import shop_settings_of, shop_settings_update
from recommender import registry, selectors
from recommender.access import access_model_version
from recommender.forms import ActivateForm, LearningSettingsForm, RollbackForm, TrainForm, run_ids_from_query
from recommender.kinds import KINDS, UnknownKind, kind_spec
from recommender.models import ModelVersion, TrainingRun
from recommender.training import training_run_request
from recsite import charts

VIEWER = Membership.Role.VIEWER
MERCHANDISER = Membership.Role.MERCHANDISER
ADMIN = Membership.Role.ADMIN

HISTORY_LIMIT = 30  # versions of one kind in the table and the charts
MODELS_CHANGED = "models-changed"  # the event that reloads the registry region


@dataclass(frozen=True)
class VersionRow:
    """One version in the table: its metrics as percentages (None when not measured)."""

    version: ModelVersion
    ndcg: float | None
    recall: float | None
    hit_rate: float | None
    mrr: float | None
    coverage: float | None
    cold_hit_rate: float | None
    cases: int | None
    train_seconds: float | None
    is_active: bool
    is_previous: bool


def _percent(metrics: dict[str, Any], name: str) -> float | None:
    value = metrics.get(name)
    return 100.0 * float(value) if isinstance(value, (int, float)) else None


def _version_row(version: ModelVersion, active_id: int | None, previous_id: int | None) -> VersionRow:
    metrics = version.metrics or {}
    total = (version.durations or {}).get("total")
    return VersionRow(
        version=version,
        ndcg=_percent(metrics, "ndcg_at_10"),
        recall=_percent(metrics, "recall_at_20"),
        hit_rate=_percent(metrics, "hit_rate_at_10"),
        mrr=_percent(metrics, "mrr"),
        coverage=_percent(metrics, "coverage_at_10"),
        cold_hit_rate=_percent(metrics, "cold_hit_rate_at_10"),
        cases=metrics.get("cases"),
        train_seconds=float(total) if isinstance(total, (int, float)) else None,
        is_active=version.pk == active_id,
        is_previous=version.pk == previous_id,
    )


def _history_charts(kind: str, rows: list[VersionRow]) -> list[SafeString]:
    """Offline metrics and training time of the kind's versions, oldest to newest."""

    def point(row: VersionRow, value: float | None) -> charts.Point:
        created = timezone.localtime(row.version.created_at).strftime("%-d %b %H:%M")
        return charts.Point(
            label=f"v{row.version.number} ({created})", value=value or 0.0, tick=f"v{row.version.number}"
        )

    label = kind.replace("_", " ")
    measured = [row for row in rows if row.ndcg is not None]
    timed = [row for row in rows if row.train_seconds is not None]
    result = []
    if measured:
        result.append(
            charts.line_chart(
                [point(row, row.ndcg) for row in measured], title=f"NDCG@10 of {label} by version", unit="%"
            )
        )
        result.append(
            charts.line_chart(
                [point(row, row.hit_rate) for row in measured], title=f"Hit rate@10 of {label} by version", unit="%"
            )
        )
    if timed:
        result.append(
            charts.bar_chart(
                [point(row, row.train_seconds) for row in timed], title=f"Training time of {label} by version", unit="s"
            )
        )
    return result


def _selected_kind(requested: str | None, overview: list[selectors.KindOverview]) -> str:
    """The kind asked for, else the first one with versions, else the first one."""
    if requested in KINDS:
        return str(requested)
    trained = [row.kind for row in overview if row.version_count]
    return trained[0] if trained else overview[0].kind


def _registry_context(membership: Membership, kind: str | None) -> dict[str, Any]:
    shop = membership.shop
    overview = selectors.model_kinds_overview(shop, list(KINDS))
    selected = _selected_kind(kind, overview)
    summary = next(row for row in overview if row.kind == selected)
    pointer = selectors.active_model_for_shop(shop, selected)
    active_id = pointer.version_id if pointer else None
    previous_id = pointer.previous_version_id if pointer else None
    rows = [
        _version_row(version, active_id, previous_id)
        for version in selectors.model_version_history(shop, selected, limit=HISTORY_LIMIT)
    ]
    return {
        "overview": overview,
        "kind": selected,
        "summary": summary,
        "primary_metric": kind_spec(selected).primary_metric,
        "rows": list(reversed(rows)),  # newest first in the table
        "charts": _history_charts(selected, rows),
        "can_manage": role_at_least(membership.role, ADMIN),
    }


def _training_context(membership: Membership, runs: list[TrainingRun]) -> dict[str, Any]:
    progress = selectors.batch_progress(runs)
    query = urlencode({"runs": ",".join(str(run.pk) for run in runs)})
    return {
        "progress": progress,
        "training_url": f"{reverse('console:model-training', args=[membership.shop.slug])}?{query}",
        "models_url": f"{reverse('console:models', args=[membership.shop.slug])}?{query}",
        "can_train": role_at_least(membership.role, MERCHANDISER),
    }


def _models_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    kind: str | None,
    runs: list[TrainingRun],
    train_form: TrainForm | None = None,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    shop = membership.shop
    context = {
        **_registry_context(membership, kind),
        **_training_context(membership, runs),
        "train_form": train_form or TrainForm(),
        "learning": shop,
    }
    return render_screen(
        request, "console/models/models.html", context, membership=membership, partial=partial, status=status
    )


def _runs_from_query(request: HtmxHttpRequest, membership: Membership) -> list[TrainingRun]:
    """The runs named by ``?runs=``, else the shop's unfinished runs. ValidationError when malformed."""
    raw = request.GET.get("runs")
    if raw is None:
        return selectors.training_runs_unfinished(membership.shop)
    return selectors.training_runs_by_ids(membership.shop, run_ids_from_query(raw))


@console_view
@require_GET
def models(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    try:
        runs = _runs_from_query(request, membership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        runs = []
    return _models_screen(request, membership, kind=request.GET.get("kind"), runs=runs, partial="registry")


@console_view
@require_GET
def model_training(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """The progress region of the runs in ``?runs=`` (what the progress bar polls)."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    try:
        runs = _runs_from_query(request, membership)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400, content_type="text/plain")
    if not request.htmx:
        return HttpResponseRedirect(_training_context(membership, runs)["models_url"])
    response = _models_screen(request, membership, kind=None, runs=runs, partial="training")
    progress = selectors.batch_progress(runs)
    if progress is not None and progress.finished:
        # The last poll: the registry region reloads to show the new versions.
        trigger_client_event(response, MODELS_CHANGED)
    return response


@console_view
@require_POST
def model_train(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Train now: queue a run per kind (or the one chosen) and show their progress."""
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    form = TrainForm(request.POST)
    requested = []
    if form.is_valid():
        try:
            requested = training_run_request(
                shop=membership.shop, kinds=form.kinds(), actor=Actor.for_user(request.user)
            )
        except (UnknownKind, ValueError) as error:
            form.add_error("kind", str(error))
    if not form.is_valid():
        return _models_screen(request, membership, kind=None, runs=[], train_form=form, partial="training", status=400)
    runs = sorted((item.run for item in requested), key=lambda run: (run.kind, run.pk))
    started = [item.run.kind for item in requested if item.created]
    if started:
        messages.success(request, f"Training started: {', '.join(started)}.")
    if len(started) < len(requested):
        busy = [item.run.kind for item in requested if not item.created]
        messages.info(request, f"Already training: {', '.join(busy)}; following that run.")
    if request.htmx:
        return _models_screen(request, membership, kind=None, runs=runs, partial="training")
    return HttpResponseRedirect(_training_context(membership, runs)["models_url"])


def _after_registry_change(request: HtmxHttpRequest, membership: Membership, kind: str) -> HttpResponse:
    """htmx: the refreshed registry region (with the flash messages out of band);
    otherwise back to the page of that kind (post/redirect/get)."""
    if request.htmx:
        return _models_screen(request, membership, kind=kind, runs=[], partial="registry")
    return HttpResponseRedirect(f"{reverse('console:models', args=[membership.shop.slug])}?{urlencode({'kind': kind})}")


@console_view
@require_POST
def model_activate(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    form = ActivateForm(request.POST)
    if not form.is_valid():
        access_shop(request.user, shop_slug, ADMIN)
        return HttpResponse("Choose a version to activate (its id).", status=400, content_type="text/plain")
    membership, version = access_model_version(request.user, shop_slug, form.cleaned_data["version"], ADMIN)
    try:
        registry.model_version_activate(version=version, actor=Actor.for_user(request.user))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{version.kind.replace('_', ' ')} v{version.number} is now served.")
    return _after_registry_change(request, membership, version.kind)


@console_view
@require_POST
def model_rollback(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, ADMIN)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Choose a model kind to roll back.", status=400, content_type="text/plain")
    kind = form.cleaned_data["kind"]
    try:
        pointer = registry.model_rollback(shop=membership.shop, kind=kind, actor=Actor.for_user(request.user))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Rolled back: {kind.replace('_', ' ')} v{pointer.version.number} is served again.")
    return _after_registry_change(request, membership, kind)


@console_view
@require_http_methods(["GET", "POST"])
def model_learning_settings(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Event weights and decay half-life: what the next training learns from."""
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    shop = membership.shop
    form = LearningSettingsForm(initial=LearningSettingsForm.initial_for(shop))
    if request.method == "POST":
        form = LearningSettingsForm(request.POST)
        if form.is_valid():
            try:
                changed = shop_settings_update(
                    shop=shop, settings=form.apply_to(shop_settings_of(shop)), actor=Actor.for_user(request.user)
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(None, f"{field}: {' '.join(problems)}")
            else:
                if changed:
                    messages.success(request, "Saved. The next training of every model learns with these settings.")
                else:
                    messages.info(request, "Nothing changed.")
                return HttpResponseRedirect(reverse("console:models", args=[shop.slug]))
    return render_screen(
        request,
        "console/models/learning.html",
        {"form": form},
        membership=membership,
        status=400 if form.is_bound else 200,
    )
