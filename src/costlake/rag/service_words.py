"""Service names in questions: the patterns that find a service of the lake, by its names and the
aliases people use ("S3", "storage"), or, for a name not plain ASCII, by its own words
(rag/query_parser.py reads the question with them)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from costlake.catalog.readers import service_key, simple_lower
from costlake.rag.bm25 import camel_parts

WORD_START, WORD_END = r"(?<![a-z0-9])", r"(?![a-z0-9])"  # whole words
_UB, _UE = r"(?<![^\W_])", r"(?![^\W_])"  # whole words, in any script

# canonical name -> other spellings billing exports use, then question-side aliases
_FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "AmazonEC2": (("Amazon Elastic Compute Cloud", "Amazon Elastic Compute Cloud - Compute"),
                  ("ec2", "compute", "instances")),
    "AmazonS3": (("Amazon Simple Storage Service",), ("s3", "storage", "bucket", "object storage")),
    "AmazonRDS": (("Amazon Relational Database Service",),
                  ("rds", "database", "aurora", "postgres", "mysql")),
    "AWSLambda": (("AWS Lambda",), ("lambda", "function", "serverless")),
    "AWSDataTransfer": (("AWS Data Transfer",), ("data transfer", "egress", "bandwidth")),
    "AmazonCloudFront": (("Amazon CloudFront",), ("cloudfront", "cdn")),
    "AmazonDynamoDB": (("Amazon DynamoDB",), ("dynamodb", "dynamo")),
    "AmazonEKS": (("Amazon Elastic Kubernetes Service",), ("eks", "kubernetes", "k8s")),
    "AmazonRedshift": (("Amazon Redshift",), ("redshift", "warehouse", "data warehouse")),
    "AmazonElastiCache": (("Amazon ElastiCache",), ("elasticache", "redis", "memcached", "cache")),
    "AmazonCloudWatch": (("Amazon CloudWatch",), ("cloudwatch", "logs", "logging", "monitoring")),
    "AmazonVPC": (("Amazon Virtual Private Cloud",), ("vpc", "nat gateway", "vpn")),
    "AmazonES": (("Amazon OpenSearch Service", "Amazon Elasticsearch Service"),
                 ("opensearch", "elasticsearch")),
    "AmazonSageMaker": (("Amazon SageMaker",), ("sagemaker", "machine learning")),
    "ElasticMapReduce": (("Amazon EMR", "Amazon Elastic MapReduce"), ("emr", "mapreduce", "hadoop")),
    "AmazonEFS": (("Amazon Elastic File System",), ("efs", "file system")),
    "AmazonKinesis": (("Amazon Kinesis",), ("kinesis",)),
    "AmazonMSK": (("Amazon Managed Streaming for Apache Kafka",), ("msk", "kafka")),
    "AWSGlue": (("AWS Glue",), ("glue", "etl")),
    "AmazonAthena": (("Amazon Athena",), ("athena",)),
    "AmazonECR": (("Amazon Elastic Container Registry",), ("ecr", "container registry")),
    "AmazonECS": (("Amazon Elastic Container Service",), ("ecs", "fargate")),
    "AWSBackup": (("AWS Backup",), ("backup",)),
    "AmazonGuardDuty": (("Amazon GuardDuty",), ("guardduty", "guard duty")),
    "AWSConfig": (("AWS Config",), ()),
    "AWSCloudTrail": (("AWS CloudTrail",), ("cloudtrail",)),
    "AmazonApiGateway": (("Amazon API Gateway",), ("api gateway",)),
    "AWSQueueService": (("Amazon Simple Queue Service",), ("sqs", "queue")),
    "AmazonSNS": (("Amazon Simple Notification Service",), ("sns", "notification")),
    "AmazonRoute53": (("Amazon Route 53",), ("route 53", "dns")),
    "AWSKMS": (("AWS Key Management Service",), ("kms", "key management")),
    "AWSSecretsManager": (("AWS Secrets Manager",), ("secrets manager", "secret")),
    "AmazonStates": (("AWS Step Functions",), ("step function", "state machine")),
    "AmazonCognito": (("Amazon Cognito",), ("cognito",)),
    "AmazonSES": (("Amazon Simple Email Service",), ("ses", "email")),
    "AWSWAF": (("AWS WAF",), ("waf", "firewall")),
}  # fmt: skip

#: canonical service names the parser knows aliases for (the generator's services)
KNOWN_SERVICES: tuple[str, ...] = tuple(_FAMILIES)


@lru_cache(maxsize=64)
def service_patterns(services: frozenset[str]) -> tuple[tuple[str, frozenset[str], str], ...]:
    """(pattern, services it means, the lower-case word every match starts with), the names spelt
    whole first, then the longest pattern first: canonical names, other spellings and aliases of
    each known service present in `services`, then the remaining services under their own name."""
    by_key: dict[str, set[str]] = {}
    for service in services:
        by_key.setdefault(service_key(service), set()).add(service)
    patterns: dict[str, set[str]] = {}
    needles: dict[str, str] = {}
    claimed: set[str] = set()
    for canonical, (names, aliases) in _FAMILIES.items():
        spellings = (canonical, *names, *aliases)
        members = {s for spelling in spellings for s in by_key.get(service_key(spelling), ())}
        claimed |= members
        for spelling in spellings if members else ():
            pattern = _words_pattern(spelling, plural=spelling in aliases)
            patterns.setdefault(pattern, set()).update(members)
            needles[pattern] = _first_part(spelling)
    for service in services - claimed:
        pattern, needle = _own_pattern(service)
        patterns.setdefault(pattern, set()).add(service)
        needles[pattern] = needle
    # A name spelt whole (`_spelt_whole`) first: it matches only its own spelling, where an alias
    # would match inside it ("s3" at the end of a look-alike "amazon<zero-width space>s3").
    ordered = sorted(patterns.items(), key=lambda p: (not p[0].startswith(_UB), -len(p[0]), p[0]))
    return tuple((pattern, frozenset(members), needles[pattern]) for pattern, members in ordered if pattern)


def _own_pattern(service: str) -> tuple[str, str]:
    """The pattern of a service without aliases, and the text every match starts with: its words
    (`_words_pattern`). A lake that stores names case-folded ("amazonglacier") has lost the
    capitals that split them, so a cloud vendor's name it starts with is split off: it is asked
    about as "Amazon Glacier" or "amazon-glacier". Nothing else is split ("iam" is not "I am")."""
    if not _spelt_whole(service) and service == service.lower():
        vendor = next((v for v in _VENDORS if service.startswith(v) and len(service) > len(v) + 2), None)
        if vendor is not None:
            service = f"{vendor} {service[len(vendor) :]}"
    return _words_pattern(service), _first_part(service)


_VENDORS = ("amazon", "aws", "azure", "microsoft", "google", "gcp", "oracle", "oci")


def _first_part(term: str) -> str:
    """The first part `_words_pattern` matches: "AmazonEC2" -> "amazon"."""
    if _spelt_whole(term):
        return next(iter(_unicode_words(term)), "")
    return next((p for word in re.findall(r"[A-Za-z0-9]+", term) for p in camel_parts(word)), "")


def _words_pattern(term: str, *, plural: bool = False) -> str:
    """Whole-word pattern for a service name or alias; "AmazonEC2" also matches "Amazon EC2", "amazon-ec2".
    A name that is not plain ASCII matches its own words in order ("Stockage Données" also matches
    "stockage-données"), each character as it is: an invisible one inside a word stays in the pattern,
    so a look-alike of a service's name never matches what is typed for the service."""
    if _spelt_whole(term):
        words = _unicode_words(term)
        if not words:
            return ""
        return _UB + r"[\W_]*".join(re.escape(w) for w in words) + _UE
    parts = [p for word in re.findall(r"[A-Za-z0-9]+", term) for p in camel_parts(word)]
    if not parts:
        return ""
    return WORD_START + r"[\s._-]*".join(re.escape(p) for p in parts) + ("s?" if plural else "") + WORD_END


def _spelt_whole(term: str) -> bool:
    """Whether a name is matched by its own words, each character as it is (`_unicode_words`),
    rather than by its ASCII letters and digits split at capitals: a name that is not plain ASCII,
    or that has no ASCII letter or digit ("!!!")."""
    return not term.isascii() or re.search(r"[A-Za-z0-9]", term) is None


def _unicode_words(term: str) -> list[str]:
    """A name's words, composed (NFC) and lower-cased: the runs between spaces and punctuation, as
    `readers.service_key` compares names (symbols and emoji are kept: "cloud ☁ storage" has three)."""
    text = simple_lower(unicodedata.normalize("NFC", term))
    words = "".join(" " if unicodedata.category(ch)[0] in "ZP" else ch for ch in text).split()
    return words or [text.strip()] if text.strip() else []  # a name of punctuation alone is one word
