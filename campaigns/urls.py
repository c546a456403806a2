from django.urls import path

from campaigns import apis

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
