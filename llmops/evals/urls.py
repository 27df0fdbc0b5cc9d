app_name = "evals"

urlpatterns: list = []

api_urlpatterns: list = []
