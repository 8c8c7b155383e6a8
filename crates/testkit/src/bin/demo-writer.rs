//! `demo-writer`: the demo's table and its changes, for `scripts/demo`.
//!
//! `demo-writer ENDPOINT TABLE setup` creates TABLE (hash key `pk`, range key
//! `sk`, a NEW_AND_OLD_IMAGES stream) unless it exists, and prints its ARN.
//! `demo-writer ENDPOINT TABLE write` then inserts, updates and deletes an
//! order every second, until stopped.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use awsdynamodb_testkit::{Retries, dynamodb_client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, table, command] = args.as_slice() else {
        bail!("usage: demo-writer ENDPOINT TABLE setup|write");
    };
    let ddb = dynamodb_client(endpoint, Retries::Standard);
    match command.as_str() {
        "setup" => println!("{}", setup(&ddb, table).await?),
        "write" => write(&ddb, table).await?,
        other => bail!("unknown command {other:?}: setup or write"),
    }
    Ok(())
}

async fn setup(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<String> {
    if let Ok(found) = ddb.describe_table().table_name(table).send().await {
        return found
            .table()
            .and_then(|t| t.table_arn())
            .map(str::to_owned)
            .context("no table ARN");
    }
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str, ty: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
    };
    let created = ddb
        .create_table()
        .table_name(table)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::N)?)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("cannot create table {table}"))?;
    created
        .table_description()
        .and_then(|t| t.table_arn())
        .map(str::to_owned)
        .context("no table ARN")
}

async fn write(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    for order in 1.. {
        let customer = format!("customer-{}", order % 3);
        ddb.put_item()
            .table_name(table)
            .item("pk", s(&customer))
            .item("sk", n(order))
            .item("status", s("placed"))
            .item(
                "total",
                AttributeValue::N(format!("{}.{:02}", order * 7, order % 100)),
            )
            .item("items", AttributeValue::L(vec![s("book"), s("pen")]))
            .send()
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        ddb.update_item()
            .table_name(table)
            .key("pk", s(&customer))
            .key("sk", n(order))
            .update_expression("SET #s = :s")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s("shipped"))
            .send()
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if order % 2 == 0 {
            ddb.delete_item()
                .table_name(table)
                .key("pk", s(&customer))
                .key("sk", n(order - 1))
                .send()
                .await?;
        }
    }
    Ok(())
}
