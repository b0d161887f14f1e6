import asyncio

from deploy.bench.run import main

asyncio.run(main())
