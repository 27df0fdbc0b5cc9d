app_name = "traces"

urlpatterns: list = []

api_urlpatterns: list = []
