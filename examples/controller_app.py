"""The seed's System Controller script (its dashboard.py): REST API and dashboard, dispatcher
and monitor. The servers come from the environment or a .env file (KAFKA_HOST, REDIS_HOST,
MONGO_HOST, ...); with none of them set it runs on the embedded backends. PORT picks the port
(default 8000). `python -m skalds.system_controller.main` does the same from the environment
alone (SYSTEM_CONTROLLER_PORT, ...)."""

import os

from skalds.config._enum import DispatcherStrategyEnum, SystemControllerModeEnum
from skalds.config.system_controller_config import SystemControllerConfig
from skalds.system_controller import SystemController

config = SystemControllerConfig(
    system_controller_mode=SystemControllerModeEnum.DISPATCHER,
    system_controller_host="127.0.0.1",
    system_controller_port=int(os.environ.get("PORT", "8000")),
    dispatcher_strategy=DispatcherStrategyEnum.LEAST_TASKS,
)
SystemController(config).run()
