"""HTTP plumbing shared by every endpoint: routing helpers and error mapping (`routing`), request schemas
(`schema`), the OpenAPI document, `/metrics`, and the agent stream websocket (`stream`). May import the
gateway, the service and below; the endpoints themselves live in `inbox.api` and `inbox.pages`.
"""
