from django.urls import path

from analytics import apis, views

api_urlpatterns = [
    path("metrics", apis.MetricsApi.as_view(), name="metrics"),
    path("experiments/<int:experiment_id>/results", apis.ExperimentResultsApi.as_view(), name="experiment-results"),
    path(
        "experiments/<int:experiment_id>/results.csv",
        apis.ExperimentResultsCsvApi.as_view(),
        name="experiment-results-csv",
    ),
]

# Console pages, mounted by recsite/console_urls.py under /console/<shop_slug>/ in the
# "console" namespace. experiment-results and experiment-promote are the names the
# campaigns experiment page waits for (templates/console/experiments/experiment.html).
console_urlpatterns = [
    path("analytics/", views.analytics_page, name="analytics"),
    path("experiments/<int:experiment_id>/results/", views.experiment_results_view, name="experiment-results"),
    path(
        "experiments/<int:experiment_id>/results.csv",
        views.experiment_results_csv,
        name="experiment-results-csv",
    ),
    path("experiments/<int:experiment_id>/promote/", views.experiment_promote, name="experiment-promote"),
]
