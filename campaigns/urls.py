from django.urls import path

from campaigns import apis, views

api_urlpatterns = [
    path("placements", apis.PlacementsApi.as_view(), name="placements"),
    path("placements/<slug:slug>", apis.PlacementApi.as_view(), name="placement"),
    path("strategies", apis.StrategiesApi.as_view(), name="strategies"),
    path("strategies/<int:strategy_id>", apis.StrategyApi.as_view(), name="strategy"),
    path("promotions", apis.PromotionsApi.as_view(), name="promotions"),
    path("promotions/<int:promotion_id>", apis.PromotionApi.as_view(), name="promotion"),
    path("promotions/<int:promotion_id>/publish", apis.PromotionPublishApi.as_view(), name="promotion-publish"),
    path("promotions/<int:promotion_id>/pause", apis.PromotionPauseApi.as_view(), name="promotion-pause"),
    path("seasonal-boosts", apis.SeasonalBoostsApi.as_view(), name="seasonal-boosts"),
    path("seasonal-boosts/<int:boost_id>", apis.SeasonalBoostApi.as_view(), name="seasonal-boost"),
    path("seasonal-suggestions", apis.SeasonalSuggestionsApi.as_view(), name="seasonal-suggestions"),
    path(
        "seasonal-suggestions/<int:suggestion_id>/accept",
        apis.SeasonalSuggestionAcceptApi.as_view(),
        name="seasonal-suggestion-accept",
    ),
    path(
        "seasonal-suggestions/<int:suggestion_id>/dismiss",
        apis.SeasonalSuggestionDismissApi.as_view(),
        name="seasonal-suggestion-dismiss",
    ),
    path("experiments", apis.ExperimentsApi.as_view(), name="experiments"),
    path("experiments/<int:experiment_id>", apis.ExperimentApi.as_view(), name="experiment"),
    path("experiments/<int:experiment_id>/schedule", apis.ExperimentScheduleApi.as_view(), name="experiment-schedule"),
    path("experiments/<int:experiment_id>/start", apis.ExperimentStartApi.as_view(), name="experiment-start"),
    path("experiments/<int:experiment_id>/stop", apis.ExperimentStopApi.as_view(), name="experiment-stop"),
    path("experiments/<int:experiment_id>/promote", apis.ExperimentPromoteApi.as_view(), name="experiment-promote"),
]

# Console pages of merchandising, mounted by recsite/console_urls.py under
# /console/<shop_slug>/ in the "console" namespace. Names that other parts will add
# (see the templates): strategy-preview and promotion-preview (recommender/serving),
# experiment-results and experiment-promote (analytics).
console_urlpatterns = [
    path("placements/", views.placements, name="placements"),
    path("placements/defaults/", views.placements_defaults, name="placements-defaults"),
    path("placements/<slug:placement_slug>/", views.placement_detail, name="placement"),
    path("strategies/new/", views.strategy_new, name="strategy-new"),
    path("strategies/<int:strategy_id>/", views.strategy_detail, name="strategy"),
    path("strategies/<int:strategy_id>/delete/", views.strategy_delete, name="strategy-delete"),
    path("promotions/", views.promotions, name="promotions"),
    path("promotions/new/", views.promotion_new, name="promotion-new"),
    path("promotions/matches/", views.promotion_matches, name="promotion-matches"),
    path("promotions/<int:promotion_id>/", views.promotion_detail, name="promotion"),
    path("promotions/<int:promotion_id>/publish/", views.promotion_publish, name="promotion-publish"),
    path("promotions/<int:promotion_id>/pause/", views.promotion_pause, name="promotion-pause"),
    path("promotions/<int:promotion_id>/delete/", views.promotion_delete, name="promotion-delete"),
    path("calendar/", views.calendar_page, name="calendar"),
    path("seasonal/", views.seasonal, name="seasonal"),
    path("seasonal/new/", views.seasonal_new, name="seasonal-new"),
    path("seasonal/measure/", views.seasonal_measure, name="seasonal-measure"),
    path("seasonal/<int:boost_id>/", views.seasonal_boost_detail, name="seasonal-boost"),
    path("seasonal/<int:boost_id>/delete/", views.seasonal_boost_delete, name="seasonal-boost-delete"),
    path(
        "seasonal/suggestions/<int:suggestion_id>/accept/",
        views.seasonal_suggestion_accept,
        name="seasonal-suggestion-accept",
    ),
    path(
        "seasonal/suggestions/<int:suggestion_id>/dismiss/",
        views.seasonal_suggestion_dismiss,
        name="seasonal-suggestion-dismiss",
    ),
    path("experiments/", views.experiments, name="experiments"),
    path("experiments/new/", views.experiment_new, name="experiment-new"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path("experiments/<int:experiment_id>/edit/", views.experiment_edit, name="experiment-edit"),
    path("experiments/<int:experiment_id>/schedule/", views.experiment_schedule, name="experiment-schedule"),
    path("experiments/<int:experiment_id>/start/", views.experiment_start, name="experiment-start"),
    path("experiments/<int:experiment_id>/stop/", views.experiment_stop, name="experiment-stop"),
    path("experiments/<int:experiment_id>/delete/", views.experiment_delete, name="experiment-delete"),
]
