from services.routing.settings import RoutingSettings
from shared.serve import serve

if __name__ == "__main__":
    serve("services.routing.main:create_app", RoutingSettings())  # type: ignore[call-arg]
