"""Deploy the synthesized hub stack into moto, the way ``cdk deploy`` would into AWS.

The local stack and the infra tests call :func:`deploy_to_moto` with a boto3 session that points at moto
(in-process under ``mock_aws``, or a moto server through ``endpoint_url``). It

1. writes the CDK bootstrap version parameter the template's ``BootstrapVersion`` parameter reads;
2. publishes the file assets of the cloud assembly (``<stack>.assets.json``) to the bootstrap bucket:
   directories zipped (cached per asset hash in the assembly), files as they are, at the template's keys;
3. fills, from the template itself, the gaps of moto's CloudFormation (each verified with moto 5.2.5):

   - ``AWS::SecretsManager::Secret`` has no moto model (skipped, its ``Ref`` would be None): each secret is
     created through the Secrets Manager API and its ``Ref`` replaced by the ARN;
   - ``AWS::Lambda::LayerVersion``: moto answers its ``Ref`` with an object, not the version ARN: each
     layer is published through the Lambda API and its ``Ref`` replaced by the ARN;
   - ``AWS::Events::EventBus`` and ``Archive``: same ``Ref`` problem; replaced by their literal names;
   - ``AWS::Events::Archive``: moto parses ``EventPattern`` only as a JSON string: it is serialized;
   - ``AWS::ApiGateway::Stage`` is skipped: its name moves onto its deployment (moto then creates the
     stage) and its ``Ref`` becomes the stage name, as in AWS;
   - ``AWS::CloudWatch::Alarm``, ``AWS::SNS::TopicPolicy`` and ``AWS::SNS::Subscription`` have no moto
     model and reference what the stack creates: they are set aside (see ``CREATED_AFTER``) and created
     through their APIs in step 5. An alarm's ``Ref`` becomes its name and its ``Arn`` the ARN built from
     that name (the dashboard's alarm widgets read it), so each alarm needs a literal ``AlarmName``;

4. creates the stack, waits for ``CREATE_COMPLETE``, then
5. writes each state machine's definition with its ``DefinitionSubstitutions`` applied (moto ignores
   them) through the Step Functions API, which re-creates the machine in moto's executing backend when
   ``execute_state_machine`` is on, sets each function's ``Layers`` (moto's CloudFormation drops them),
   applies the topic policies, subscribes the subscriptions and puts the alarms, their properties resolved
   against the deployed stack;
6. returns the stack outputs.

Left out of the moto deployment (no moto model, nothing the local stack needs): ``AWS::SQS::QueuePolicy``
and ``AWS::S3::BucketPolicy`` (the TLS-only policies), ``AWS::ApiGateway::Account``, ``RequestValidator``
and ``Model`` (see ``LEFT_OUT``). Dropped by moto, harmless for the local stack (handlers run in-process):
functions' ``Architectures`` (they show as x86_64), ``TracingConfig`` and ``LoggingConfig``; a queue's
``RedriveAllowPolicy`` (kept, not reported by GetQueueAttributes; moto has no StartMessageMoveTask);
a bucket's versioning, lifecycle rules, public access block and ownership controls (moto keeps only its
encryption); DynamoDB TTL stays disabled.
"""

from __future__ import annotations

import copy
import io
import json
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
BOOTSTRAP_VERSION = "30"
TERMINAL_FAILURES = ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "ROLLBACK_IN_PROGRESS")


class LocalDeployError(RuntimeError):
    """The stack could not be deployed into moto; the message says where."""


@dataclass(frozen=True)
class StackArtifact:
    stack_name: str
    template_file: Path
    asset_manifest_file: Path | None


def find_stack(assembly_dir: str | Path, stack_name: str) -> StackArtifact:
    """The template and asset manifest of ``stack_name`` in a cloud assembly (``cdk.out``)."""
    assembly = Path(assembly_dir)
    manifest_path = assembly / "manifest.json"
    if not manifest_path.is_file():
        raise LocalDeployError(f"no cloud assembly at {assembly}: run `python app.py` (make synth) first")
    artifacts: dict[str, Any] = json.loads(manifest_path.read_text()).get("artifacts", {})
    for artifact_id, artifact in artifacts.items():
        properties = artifact.get("properties", {})
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        if properties.get("stackName", artifact_id) != stack_name:
            continue
        asset_manifest = None
        for dependency in artifact.get("dependencies", []):
            candidate = artifacts.get(dependency, {})
            if candidate.get("type") == "cdk:asset-manifest":
                asset_manifest = assembly / candidate["properties"]["file"]
        return StackArtifact(stack_name, assembly / properties["templateFile"], asset_manifest)
    names = [a.get("properties", {}).get("stackName", i) for i, a in artifacts.items() if "properties" in a]
    raise LocalDeployError(f"stack {stack_name!r} is not in {assembly} (stacks there: {names})")


# --- assets -------------------------------------------------------------------------------------------


def _zip_directory(directory: Path, cache: Path) -> bytes:
    """A zip of ``directory``, cached by its asset id (the directory name holds the content hash)."""
    cached = cache / f"{directory.name}.zip"
    if cached.is_file():
        return cached.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    data = buffer.getvalue()
    cache.mkdir(exist_ok=True)
    cached.write_bytes(data)
    return data


def _fill(text: str, account: str, region: str, partition: str = "aws") -> str:
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", partition)
    )


def publish_assets(s3: Any, artifact: StackArtifact, *, account: str, region: str) -> list[str]:
    """Upload every file asset to its bootstrap-bucket destination; the S3 URIs written."""
    if artifact.asset_manifest_file is None:
        return []
    assembly = artifact.asset_manifest_file.parent
    manifest = json.loads(artifact.asset_manifest_file.read_text())
    if manifest.get("dockerImages"):
        raise LocalDeployError("container image assets cannot be deployed locally (there is no Docker)")
    written: list[str] = []
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for asset_id, asset in manifest.get("files", {}).items():
        source = asset["source"]
        if "path" not in source:
            raise LocalDeployError(f"asset {asset_id} is built by a command, which local deploys do not run")
        path = assembly / source["path"]
        if source.get("packaging") == "zip":
            body = (
                _zip_directory(path, assembly / ".local-deploy-zips") if path.is_dir() else path.read_bytes()
            )
        else:
            body = path.read_bytes()
        for destination in asset["destinations"].values():
            bucket = _fill(destination["bucketName"], account, region)
            key = _fill(destination["objectKey"], account, region)
            if bucket not in existing:
                options = (
                    {}
                    if region == "us-east-1"
                    else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                )
                s3.create_bucket(Bucket=bucket, **options)
                existing.add(bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            written.append(f"s3://{bucket}/{key}")
    return written


# --- template adjustments for moto --------------------------------------------------------------------


def _replace_refs(
    node: Any, literals: Mapping[str, Any], attributes: Mapping[tuple[str, str], Any] | None = None
) -> Any:
    """``Ref`` of a logical id in ``literals``, and ``Fn::GetAtt`` of one in ``attributes``, replaced."""
    attributes = attributes or {}
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in literals:
            return literals[node["Ref"]]
        if set(node) == {"Fn::GetAtt"} and tuple(node["Fn::GetAtt"]) in attributes:
            return attributes[tuple(node["Fn::GetAtt"])]
        return {key: _replace_refs(value, literals, attributes) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_refs(item, literals, attributes) for item in node]
    return node


def _drop_resources(template: dict[str, Any], logical_ids: set[str]) -> None:
    resources = template["Resources"]
    for logical_id in logical_ids:
        resources.pop(logical_id, None)
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in logical_ids:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            kept = [d for d in depends if d not in logical_ids]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]


def _create_secrets(template: dict[str, Any], secretsmanager: Any) -> dict[str, str]:
    """Create each secret through the API (moto's CloudFormation has no model for them); logical id -> ARN."""
    arns: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::SecretsManager::Secret":
            continue
        properties = resource.get("Properties", {})
        if not isinstance(properties.get("SecretString", ""), str) or "GenerateSecretString" in properties:
            raise LocalDeployError(f"secret {logical_id}: only literal placeholder values deploy locally")
        name = properties.get("Name") or logical_id
        try:
            arns[logical_id] = secretsmanager.describe_secret(SecretId=name)["ARN"]
        except secretsmanager.exceptions.ResourceNotFoundException:
            arns[logical_id] = secretsmanager.create_secret(
                Name=name,
                Description=properties.get("Description", ""),
                SecretString=properties.get("SecretString", "{}"),
            )["ARN"]
    return arns


def _publish_layers(template: dict[str, Any], lambda_: Any, account: str, region: str) -> dict[str, str]:
    """Publish each layer version through the API (moto's ``Ref`` of one is no ARN); logical id -> ARN."""
    arns: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::LayerVersion":
            continue
        properties = resource["Properties"]
        content = properties["Content"]
        bucket = content["S3Bucket"]
        bucket = _fill(bucket["Fn::Sub"] if isinstance(bucket, dict) else bucket, account, region)
        options = {
            key: properties[key]
            for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo")
            if key in properties
        }
        arns[logical_id] = lambda_.publish_layer_version(
            LayerName=properties.get("LayerName") or logical_id,
            Content={"S3Bucket": bucket, "S3Key": content["S3Key"]},
            **options,
        )["LayerVersionArn"]
    return arns


# No moto CloudFormation model, nothing the local stack needs: left out (moto would skip them with a warning
# and list them in DescribeStackResources without ids). References to them become AWS::NoValue.
LEFT_OUT = frozenset(
    {
        "AWS::SQS::QueuePolicy",  # TLS-only queue policies
        "AWS::S3::BucketPolicy",  # the analytics bucket's TLS-only policy
        "AWS::ApiGateway::Account",  # the account's CloudWatch role setting
        "AWS::ApiGateway::RequestValidator",
        "AWS::ApiGateway::Model",
        "AWS::CDK::Metadata",
    }
)


def _left_out(template: dict[str, Any]) -> dict[str, Any]:
    return {
        logical_id: {"Ref": "AWS::NoValue"}
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in LEFT_OUT
    }


# Resources moto creates but whose ``Ref`` it answers with an object instead of the name CloudFormation gives.
_REF_IS_PROPERTY = {"AWS::Events::EventBus": "Name", "AWS::Events::Archive": "ArchiveName"}


def _named_refs(template: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        prop = _REF_IS_PROPERTY.get(resource["Type"])
        if prop is None:
            continue
        value = resource.get("Properties", {}).get(prop)
        if not isinstance(value, str):
            raise LocalDeployError(f"{logical_id}: give it a literal {prop} so its Ref resolves locally")
        names[logical_id] = value
    return names


def _fold_stages(template: dict[str, Any]) -> dict[str, str]:
    """Give each stage's name to its deployment (moto creates the stage from it); logical id -> stage name."""
    names: dict[str, str] = {}
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::ApiGateway::Stage":
            continue
        properties = resource["Properties"]
        deployment = properties.get("DeploymentId", {})
        if not (isinstance(deployment, dict) and deployment.get("Ref") in resources):
            raise LocalDeployError(f"stage {logical_id}: its deployment is not in the template")
        resources[deployment["Ref"]].setdefault("Properties", {})["StageName"] = properties["StageName"]
        names[logical_id] = properties["StageName"]
    return names


# No moto CloudFormation model, and their properties name what the stack creates (topics, queues, functions):
# set aside before create_stack, then created through their APIs against the deployed stack
# (:func:`create_set_aside`).
CREATED_AFTER = frozenset({"AWS::CloudWatch::Alarm", "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription"})


def _alarm_names(template: dict[str, Any], account: str, region: str) -> tuple[dict, dict]:
    """Each alarm's ``Ref`` (its name) and ``Arn``, as CloudFormation would answer them."""
    names: dict[str, str] = {}
    arns: dict[tuple[str, str], str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        name = resource.get("Properties", {}).get("AlarmName")
        if not isinstance(name, str):
            raise LocalDeployError(f"alarm {logical_id}: give it a literal AlarmName so it deploys locally")
        names[logical_id] = name
        arns[(logical_id, "Arn")] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
    return names, arns


def set_aside(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Remove the ``CREATED_AFTER`` resources from a prepared template; logical id -> resource."""
    aside = {k: r for k, r in template["Resources"].items() if r["Type"] in CREATED_AFTER}
    _drop_resources(template, set(aside))
    return aside


def _stringify_archive_patterns(template: dict[str, Any]) -> None:
    """moto parses an archive's EventPattern as a JSON string only; CloudFormation also takes an object."""
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Archive" and isinstance(properties.get("EventPattern"), dict):
            properties["EventPattern"] = {"Fn::ToJsonString": properties["EventPattern"]}


def prepare_template(
    template: Mapping[str, Any], client: Callable[[str], Any], *, account: str, region: str
) -> dict[str, Any]:
    """A copy of ``template`` that moto's CloudFormation deploys completely (see the module docstring),
    once :func:`set_aside` has taken out the resources created after the stack.

    Secrets and layer versions are created through the APIs here, so call it once per deploy.
    """
    prepared = copy.deepcopy(dict(template))
    replaced: dict[str, Any] = {
        **_create_secrets(prepared, client("secretsmanager")),
        **_publish_layers(prepared, client("lambda"), account, region),
        **_fold_stages(prepared),
        **_left_out(prepared),
    }
    _drop_resources(prepared, set(replaced))
    _stringify_archive_patterns(prepared)
    alarm_names, alarm_arns = _alarm_names(prepared, account, region)
    return _replace_refs(prepared, {**replaced, **_named_refs(prepared), **alarm_names}, alarm_arns)


# --- state machine definitions ------------------------------------------------------------------------


class _Resolver:
    """Evaluates the few intrinsics substitutions use, against the deployed stack."""

    def __init__(self, client: Callable[[str], Any], stack_name: str, account: str, region: str) -> None:
        self._client = client
        self._pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
        }
        described = client("cloudformation").describe_stack_resources(StackName=stack_name)["StackResources"]
        # moto gives no PhysicalResourceId for some types (event bus, archive, deployment, method,
        # permission); substitutions never Ref those.
        known = [r for r in described if r.get("LogicalResourceId") and r.get("PhysicalResourceId")]
        self._physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in known}
        self._types = {r["LogicalResourceId"]: r["ResourceType"] for r in known}

    def deep(self, node: Any) -> Any:
        """``node`` with every intrinsic in it evaluated (policy documents, alarm dimensions...)."""
        if (
            isinstance(node, dict)
            and len(node) == 1
            and next(iter(node)) in ("Ref", "Fn::GetAtt", "Fn::Join")
        ):
            return self(node)
        if isinstance(node, dict):
            return {key: self.deep(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.deep(item) for item in node]
        return node

    def __call__(self, node: Any) -> Any:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            name = node["Ref"]
            return self._pseudo[name] if name in self._pseudo else self._physical[name]
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            logical_id, attribute = node["Fn::GetAtt"]
            return self._attribute(logical_id, attribute)
        if isinstance(node, dict) and "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return separator.join(str(self(part)) for part in parts)
        raise LocalDeployError(f"cannot evaluate {node!r} locally")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        physical, kind = self._physical[logical_id], self._types[logical_id]
        if attribute == "Arn":
            if kind == "AWS::Lambda::Function":
                return self._client("lambda").get_function(FunctionName=physical)["Configuration"][
                    "FunctionArn"
                ]
            if kind == "AWS::SQS::Queue":
                attributes = self._client("sqs").get_queue_attributes(
                    QueueUrl=physical, AttributeNames=["QueueArn"]
                )
                return attributes["Attributes"]["QueueArn"]
            if kind == "AWS::DynamoDB::Table":
                return self._client("dynamodb").describe_table(TableName=physical)["Table"]["TableArn"]
            if kind == "AWS::Events::EventBus":
                return self._client("events").describe_event_bus(Name=physical)["Arn"]
            if kind == "AWS::IAM::Role":
                return self._client("iam").get_role(RoleName=physical)["Role"]["Arn"]
            if kind in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
                return physical
        if attribute == "QueueName" and kind == "AWS::SQS::Queue":
            return physical.rsplit("/", 1)[-1]
        raise LocalDeployError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute} ({kind}) locally")


def substitute(definition: str, values: Mapping[str, str]) -> str:
    """CloudFormation's DefinitionSubstitutions: every ``${key}`` replaced by its value."""
    for key, value in values.items():
        definition = definition.replace("${" + key + "}", value)
    return definition


def _apply_definitions(template: Mapping[str, Any], resolver: _Resolver, stepfunctions: Any) -> None:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource["Properties"]
        values = {
            key: str(resolver(value)) for key, value in properties.get("DefinitionSubstitutions", {}).items()
        }
        definition = substitute(properties["DefinitionString"], values)
        arn = resolver({"Ref": logical_id})
        try:
            stepfunctions.describe_state_machine(stateMachineArn=arn)
        except stepfunctions.exceptions.StateMachineDoesNotExist:
            # moto's executing backend is separate from the one CloudFormation wrote to: create it there.
            stepfunctions.create_state_machine(
                name=arn.rsplit(":", 1)[-1],
                definition=definition,
                roleArn=resolver(properties["RoleArn"]),
                type=properties.get("StateMachineType", "STANDARD"),
            )
        else:
            stepfunctions.update_state_machine(stateMachineArn=arn, definition=definition)


def _attach_layers(template: Mapping[str, Any], resolver: _Resolver, lambda_: Any) -> None:
    """moto's CloudFormation drops a function's ``Layers``: set them as deployed, so tools can read them."""
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        layers = resource["Properties"].get("Layers")
        if layers:
            lambda_.update_function_configuration(
                FunctionName=resolver({"Ref": logical_id}), Layers=[str(resolver(layer)) for layer in layers]
            )


# What put_metric_alarm takes: CloudFormation's alarm properties carry the API's parameter names.
_ALARM_PROPERTIES = frozenset(
    {
        "AlarmName",
        "AlarmDescription",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "ExtendedStatistic",
        "Period",
        "Unit",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "ThresholdMetricId",
    }
)


def _only(logical_id: str, properties: Mapping[str, Any], known: frozenset[str] | set[str]) -> None:
    unknown = sorted(set(properties) - set(known))
    if unknown:
        raise LocalDeployError(f"{logical_id}: {unknown} are not applied locally; teach local_deploy them")


def create_set_aside(aside: Mapping[str, Mapping[str, Any]], resolver: _Resolver, client: Callable) -> None:
    """Create the set-aside resources through their APIs: topic policies, subscriptions, then alarms."""
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for logical_id, resource in aside.items():
        properties = resolver.deep(resource.get("Properties", {}))
        by_type.setdefault(resource["Type"], []).append((logical_id, properties))
    sns = client("sns")
    for logical_id, properties in by_type.get("AWS::SNS::TopicPolicy", []):
        _only(logical_id, properties, {"Topics", "PolicyDocument"})
        for topic_arn in properties["Topics"]:
            sns.set_topic_attributes(
                TopicArn=topic_arn,
                AttributeName="Policy",
                AttributeValue=json.dumps(properties["PolicyDocument"]),
            )
    for logical_id, properties in by_type.get("AWS::SNS::Subscription", []):
        _only(logical_id, properties, {"TopicArn", "Protocol", "Endpoint"})
        sns.subscribe(
            TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"]
        )
    for logical_id, properties in by_type.get("AWS::CloudWatch::Alarm", []):
        _only(logical_id, properties, _ALARM_PROPERTIES)
        client("cloudwatch").put_metric_alarm(**properties)


# --- the whole deploy ---------------------------------------------------------------------------------


def deploy_to_moto(
    session: Any,
    assembly_dir: str | Path,
    stack_name: str,
    *,
    endpoint_url: str | None = None,
    timeout_seconds: float = 120,
) -> dict[str, str]:
    """Deploy ``stack_name`` from the cloud assembly into moto; its outputs (name -> value)."""
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=endpoint_url)
        return clients[service]

    region = session.region_name
    if not region:
        raise LocalDeployError("the boto3 session has no region")
    account = client("sts").get_caller_identity()["Account"]
    artifact = find_stack(assembly_dir, stack_name)

    client("ssm").put_parameter(
        Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )
    publish_assets(client("s3"), artifact, account=account, region=region)

    template = json.loads(artifact.template_file.read_text())
    prepared = prepare_template(template, client, account=account, region=region)
    aside = set_aside(prepared)
    cloudformation = client("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(prepared),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as error:  # moto raises what a resource's creation raised
        raise LocalDeployError(f"create_stack {stack_name} failed: {error}") from error

    deadline = time.monotonic() + timeout_seconds
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if status in TERMINAL_FAILURES or time.monotonic() > deadline:
            events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events[:10]]
            raise LocalDeployError(f"stack {stack_name} ended {status}: {reasons}")
        time.sleep(0.2)

    resolver = _Resolver(client, stack_name, account, region)
    _apply_definitions(prepared, resolver, client("stepfunctions"))
    _attach_layers(prepared, resolver, client("lambda"))
    create_set_aside(aside, resolver, client)
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
