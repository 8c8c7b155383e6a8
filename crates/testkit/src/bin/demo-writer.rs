//! `demo-writer`: the demo's table and its changes, for `scripts/demo`.
//!
//! `demo-writer ENDPOINT TABLE setup` creates TABLE (hash key `pk` S, range
//! key `sk` N, a NEW_AND_OLD_IMAGES stream) unless it exists, and prints its
//! ARN.
//! `demo-writer ENDPOINT TABLE write` then inserts, updates and deletes an
//! order every second (each even order deletes the one before), until
//! stopped.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use awsdynamodb_testkit::{KeyShape, Retries, StreamViewType, TestTable, dynamodb_client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, table, command] = args.as_slice() else {
        bail!("usage: demo-writer ENDPOINT TABLE setup|write");
    };
    let ddb = dynamodb_client(endpoint, Retries::Standard);
    match command.as_str() {
        "setup" => println!("{}", setup(&ddb, endpoint, table).await?),
        "write" => write(&ddb, table).await?,
        other => bail!("unknown command {other:?}: setup or write"),
    }
    Ok(())
}

async fn setup(ddb: &aws_sdk_dynamodb::Client, endpoint: &str, table: &str) -> Result<String> {
    if let Ok(found) = ddb.describe_table().table_name(table).send().await {
        return found
            .table()
            .and_then(|t| t.table_arn())
            .map(str::to_owned)
            .context("no table ARN");
    }
    let created = TestTable::create_named(
        endpoint,
        table.to_owned(),
        KeyShape::HashRange,
        StreamViewType::NewAndOldImages,
    )
    .await
    .with_context(|| format!("cannot create table {table}"))?;
    Ok(created.arn().to_owned())
}

async fn write(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let n = |v: i64| AttributeValue::N(v.to_string());
    // Orders are spread over three customers; the order deleted is the
    // previous one, under its own customer.
    let customer_of = |order: i64| format!("customer-{}", order % 3);
    for order in 1.. {
        let customer = customer_of(order);
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
                .key("pk", s(&customer_of(order - 1)))
                .key("sk", n(order - 1))
                .send()
                .await?;
        }
    }
    Ok(())
}
