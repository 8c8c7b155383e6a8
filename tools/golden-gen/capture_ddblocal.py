#!/usr/bin/env python3
"""Capture a real GetRecords response body from DynamoDB Local.

Creates a table with a NEW_AND_OLD_IMAGES stream and a hash+range key, writes items with
every attribute type, updates and deletes some, then reads the stream's shard from
TRIM_HORIZON and saves the GetRecords response body exactly as DynamoDB Local sent it
(bytes untouched) to crates/source/testdata/golden/dynamodb-local.input.json.
Run tools/golden-gen/generate.sh afterwards to refresh the golden output.

DynamoDB Local must be listening (default http://localhost:8000, or --endpoint). Start it with
  cd ~/.cache/ddblocal/package/emulator &&
  java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -sharedDb -port 8000 &

Needs boto3 (table set-up only; the stream is read with plain HTTP so that the body is raw).
Event IDs and times differ from run to run, so a re-capture changes the input file.
"""
import argparse
import json
import os
import sys
import urllib.request
from decimal import Decimal

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "crates", "source", "testdata", "golden",
                           "dynamodb-local.input.json")
TABLE = "golden_gen_capture"
REGION = "us-east-1"
KEY_ID = "goldengen"

# DynamoDB Local does not verify signatures, but it wants a SigV4-shaped Authorization header.
AUTH = ("AWS4-HMAC-SHA256 Credential=%s/20240101/%s/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s"
        % (KEY_ID, REGION, "0" * 64))


def streams_call(endpoint, operation, body):
    """POST one DynamoDB Streams API call and return the raw response body (bytes)."""
    req = urllib.request.Request(
        endpoint,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "X-Amz-Target": "DynamoDBStreams_20120810." + operation,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Date": "20240101T000000Z",
            "Authorization": AUTH,
        },
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def write_items(ddb):
    """The writes whose stream records are captured. Returns how many records to expect."""
    n = 0
    # 1. INSERT: every attribute type.
    ddb.put_item(TableName=TABLE, Item={
        "pk": {"S": "item#1"}, "sk": {"N": "1"},
        "S": {"S": "plain string"},
        "N": {"N": "42"},
        "B": {"B": b"\x00\x01\x7f\x80\xfe\xff"},
        "SS": {"SS": ["b", "a", "c"]},
        "NS": {"NS": ["3", "-1", "2.5"]},
        "BS": {"BS": [b"\x00", b"\xff", b"\x00\xff"]},
        "M": {"M": {"x": {"S": "1"}, "a": {"N": "2"}, "nested": {"M": {"deep": {"L": [{"BOOL": True}]}}}}},
        "L": {"L": [{"S": "one"}, {"N": "2"}, {"B": b"\x03"}, {"NULL": True}, {"L": []}, {"M": {}}]},
        "NULL": {"NULL": True},
        "BOOL_T": {"BOOL": True},
        "BOOL_F": {"BOOL": False},
        "emptyS": {"S": ""},
        "emptyB": {"B": b""},
        "emptyL": {"L": []},
        "emptyM": {"M": {}},
        "setsWithEmpty": {"L": [{"SS": ["", "x"]}, {"BS": [b"", b"\x00"]}]},
        "listOfMapsOfLists": {"L": [{"M": {"l": {"L": [{"N": "1"}, {"L": [{"S": "in"}]}]}}}, {"M": {}}]},
    })
    n += 1
    # 2. INSERT: strings that need escaping, and attribute names that need byte-wise sorting.
    ddb.put_item(TableName=TABLE, Item={
        "pk": {"S": "item#2 <&>"}, "sk": {"N": "-1.5"},
        "html": {"S": "<script>alert('x')</script> & \"q\""},
        "seps": {"S": "a\u2028b\u2029c"},
        "ctrl": {"S": "\x00\x01\x08\t\n\x0b\x0c\r\x1f \x7f\x80\x9f"},
        "slashes": {"S": "a/b\\c"},
        "unicode": {"S": "é 日本語 😀 \ufeff \uffff \U0010ffff"},
        "a": {"N": "1"}, "A": {"N": "2"}, "_": {"N": "3"}, "0": {"N": "4"}, "aa": {"N": "5"},
        "é": {"N": "6"}, "😀": {"N": "7"}, "\uff21": {"N": "8"}, "&": {"N": "9"}, "<": {"N": "10"},
        "line\nbreak": {"N": "11"},
    })
    n += 1
    # 3. INSERT: numbers as written; DynamoDB normalizes them before they reach the stream.
    ddb.put_item(TableName=TABLE, Item={
        "pk": {"S": "item#3"}, "sk": {"N": "0"},
        "n38": {"N": "12345678901234567890123456789012345678"},
        "neg38": {"N": "-99999999999999999999999999999999999999"},
        "tiny": {"N": "1E-130"},
        "tiny39": {"N": "0.000000000000000000000000000000000000001"},
        "huge": {"N": "9.9999999999999999999999999999999999999E+125"},
        "padded": {"N": "0001.500"},
        "negZero": {"N": "-0.0"},
        "plus": {"N": "+5"},
        "exp": {"N": "-1e3"},
        "ns": {"NS": ["1E-130", "100", "0.001", "-7"]},
    })
    n += 1
    # 4. MODIFY via UpdateItem: set, remove, add to a set, append to a list.
    ddb.update_item(
        TableName=TABLE, Key={"pk": {"S": "item#1"}, "sk": {"N": "1"}},
        UpdateExpression="SET #new = :v, #L = list_append(#L, :l) REMOVE #S ADD #SS :ss, #N :one",
        ExpressionAttributeNames={"#new": "added", "#L": "L", "#S": "S", "#SS": "SS", "#N": "N"},
        ExpressionAttributeValues={":v": {"S": "new"}, ":l": {"L": [{"S": "appended"}]},
                                   ":ss": {"SS": ["d"]}, ":one": {"N": "1"}},
    )
    n += 1
    # 5. MODIFY via PutItem overwrite.
    ddb.put_item(TableName=TABLE, Item={
        "pk": {"S": "item#2 <&>"}, "sk": {"N": "-1.5"}, "replaced": {"BOOL": True},
    })
    n += 1
    # 6. INSERT via UpdateItem on a missing item (binary attribute, NS).
    ddb.update_item(
        TableName=TABLE, Key={"pk": {"S": "item#4"}, "sk": {"N": "99999999999999999999999999999999999999"}},
        UpdateExpression="SET #b = :b, #ns = :ns",
        ExpressionAttributeNames={"#b": "bin", "#ns": "nums"},
        ExpressionAttributeValues={":b": {"B": b"\xff\x00"}, ":ns": {"NS": ["1", "2"]}},
    )
    n += 1
    # 7. REMOVE.
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": "item#3"}, "sk": {"N": "0"}})
    n += 1
    # 8. REMOVE of the item created by UpdateItem.
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": "item#4"},
                                          "sk": {"N": "99999999999999999999999999999999999999"}})
    n += 1
    # Writes that change nothing produce no record on AWS; count what Local does instead.
    ddb.delete_item(TableName=TABLE, Key={"pk": {"S": "never-existed"}, "sk": {"N": "0"}})
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="http://localhost:8000")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--keep-table", action="store_true", help="do not delete the table afterwards")
    args = ap.parse_args()

    ddb = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=REGION,
                       aws_access_key_id=KEY_ID, aws_secret_access_key="unused")

    try:
        ddb.delete_table(TableName=TABLE)
        ddb.get_waiter("table_not_exists").wait(TableName=TABLE)
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.get_waiter("table_exists").wait(TableName=TABLE)
    try:
        expected = write_items(ddb)
        stream_arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        desc = json.loads(streams_call(args.endpoint, "DescribeStream", {"StreamArn": stream_arn}))
        shards = desc["StreamDescription"]["Shards"]
        if len(shards) != 1:
            sys.exit("expected one shard, got %d" % len(shards))
        it = json.loads(streams_call(args.endpoint, "GetShardIterator", {
            "StreamArn": stream_arn, "ShardId": shards[0]["ShardId"],
            "ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
        raw = streams_call(args.endpoint, "GetRecords", {"ShardIterator": it})
        got = len(json.loads(raw, parse_float=Decimal)["Records"])
        if got < expected:
            sys.exit("GetRecords returned %d records, expected at least %d" % (got, expected))
        with open(args.out, "wb") as f:
            f.write(raw)
        print("wrote %s (%d records, %d bytes)" % (os.path.relpath(args.out), got, len(raw)))
    finally:
        if not args.keep_table:
            ddb.delete_table(TableName=TABLE)


if __name__ == "__main__":
    main()
