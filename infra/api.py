"""The hub's REST API (``/v1/...``): system APIs for the senders and experience APIs for portals and ops.

- ``POST /v1/webhooks/crm/opportunities`` -> ``crm_webhook``: no API Gateway authorizer, the handler
  authenticates every delivery (Standard Webhooks signature, or the Salesforce org of an Outbound Message).
- ``POST /v1/webhooks/psa/time-entries``, ``.../expenses`` and ``.../assignments`` -> ``psa_webhook``:
  authenticated the same way (Standard Webhooks signature, in the handler). Assignment changes name the
  projects whose margin the hub re-prices.
- ``GET /v1/transactions/{correlationId}`` -> ``transactions_api``: ``AWS_IAM`` (SigV4) for portals and ops.

Access logs go to their own log group, execution logging without bodies, stage throttling, X-Ray.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

STAGE_NAME = "live"
# POST /v1/webhooks/psa/<path>, all served by psa_webhook.
PSA_WEBHOOK_PATHS = ("time-entries", "expenses", "assignments")


class HubApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        webhook_function: lambda_.IFunction,
        transactions_function: lambda_.IFunction,
        psa_webhook_function: lambda_.IFunction,
        throttling_rate_limit: int = 50,
        throttling_burst_limit: int = 100,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{stack.stack_name}-api",
            description="pshub integration hub: /v1 system and experience APIs",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,  # an account-wide setting other APIs use
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies carry customer data: never in the execution logs
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=throttling_rate_limit,
                throttling_burst_limit=throttling_burst_limit,
            ),
        )
        # Its own "Endpoint" output would duplicate the stack's ApiUrl output.
        self.rest_api.node.try_remove_child("Endpoint")
        acknowledge(
            self.rest_api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The API Gateway account's CloudWatch role: the AWS-managed policy is the documented one "
            "for this account-wide setting and only allows writing API Gateway logs.",
        )
        # cdk-nag 3 fails synth on warnings too, so this one is acknowledged rather than left to print.
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "WAF is left to the deploying firm (cost, shared web ACLs, its own rules): every webhook "
            "delivery is authenticated by the handler, the experience API needs SigV4, and the stage is "
            "throttled.",
        )

        # One validator with both switches on: path parameters of the GET, the JSON body shape of the POST.
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        json_object = self.rest_api.add_model(
            "JsonObject",
            content_type="application/json",
            description="A JSON object; the handler verifies the signature and validates the fields",
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
        )

        v1 = self.rest_api.root.add_resource("v1")

        webhooks = v1.add_resource("webhooks")
        opportunities = webhooks.add_resource("crm").add_resource("opportunities")
        self.webhook_method = opportunities.add_method(
            "POST",
            apigw.LambdaIntegration(webhook_function, proxy=True),
            authorization_type=apigw.AuthorizationType.NONE,
            request_validator=validator,
            # application/json must be an object; text/xml (Outbound Messages) goes to the handler as is.
            request_models={"application/json": json_object},
        )
        acknowledge(
            self.webhook_method,
            "AwsSolutions-APIG4",
            "Webhook senders cannot sign AWS requests: crm_webhook authenticates each delivery itself "
            "(Standard Webhooks HMAC signature with a timestamp window, or the Salesforce org id of an "
            "Outbound Message) before anything is recorded.",
        )
        acknowledge(
            self.webhook_method,
            "AwsSolutions-COG4",
            "Machine-to-machine webhook authenticated by its signature in the handler; no user pool "
            "users call it.",
        )

        psa = webhooks.add_resource("psa")
        self.psa_webhook_methods = []
        for path in PSA_WEBHOOK_PATHS:
            method = psa.add_resource(path).add_method(
                "POST",
                apigw.LambdaIntegration(psa_webhook_function, proxy=True),
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
                request_models={"application/json": json_object},
            )
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                "Webhook senders cannot sign AWS requests: psa_webhook verifies each delivery's Standard "
                "Webhooks HMAC signature and timestamp window before anything is enqueued.",
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Machine-to-machine webhook authenticated by its signature in the handler; no user pool "
                "users call it.",
            )
            self.psa_webhook_methods.append(method)

        transaction = v1.add_resource("transactions").add_resource("{correlationId}")
        self.transactions_method = transaction.add_method(
            "GET",
            apigw.LambdaIntegration(transactions_function, proxy=True),
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=validator,
            request_parameters={"method.request.path.correlationId": True},
        )
        acknowledge(
            self.transactions_method,
            "AwsSolutions-COG4",
            "Experience API for portals and ops tooling, authorized with AWS_IAM (SigV4) instead of a "
            "Cognito user pool.",
        )
