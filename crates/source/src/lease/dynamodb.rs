//! Leases in a DynamoDB table (`COORDINATION=dynamodb:<table>`): one item
//! per shard, keyed by stream ARN and shard id, changed only by conditional
//! writes (KCL's lease table, with the checkpoint in the same item).
//!
//! Item: `stream` (hash key), `shard` (range key), `owner`, `counter`,
//! `checkpoint` (the position as in the checkpoint file: `{"after":"…"}`,
//! `{"since":…}` or `"finished"`), `parents` (a list), `wanted_by`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableStatus,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::{Lease, LeaseError, LeaseStore};
use crate::checkpoint::ShardPosition;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoDbLeaseStore {
    client: Client,
    table: String,
}

impl DynamoDbLeaseStore {
    /// The store on `table`, which is created (on-demand capacity) when it
    /// does not exist yet and `create` allows it.
    pub async fn open(client: Client, table: &str, create: bool) -> Result<Self, LeaseError> {
        let store = DynamoDbLeaseStore {
            client,
            table: table.to_owned(),
        };
        match store.client.describe_table().table_name(table).send().await {
            Ok(out) => {
                let status = out.table().and_then(|t| t.table_status());
                if status != Some(&TableStatus::Active) {
                    store.wait_active().await?;
                }
            }
            Err(e) if is_code(&e, "ResourceNotFoundException") && create => {
                store.create_table().await?;
            }
            Err(e) if is_code(&e, "ResourceNotFoundException") => {
                return Err(store.error(format!(
                    "the lease table {table} does not exist; create it (hash key stream, range key shard, both strings) or allow dynamodb:CreateTable"
                )));
            }
            Err(e) => return Err(store.sdk_error("DescribeTable", &e)),
        }
        Ok(store)
    }

    async fn create_table(&self) -> Result<(), LeaseError> {
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        };
        let string = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        match self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(key("stream", KeyType::Hash))
            .key_schema(key("shard", KeyType::Range))
            .attribute_definitions(string("stream"))
            .attribute_definitions(string("shard"))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
        {
            Ok(_) => {}
            // Another replica created it first.
            Err(e) if is_code(&e, "ResourceInUseException") => {}
            Err(e) => return Err(self.sdk_error("CreateTable", &e)),
        }
        self.wait_active().await
    }

    async fn wait_active(&self) -> Result<(), LeaseError> {
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.sdk_error("DescribeTable", &e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(self.error(format!(
            "the lease table {} did not become active within 60s",
            self.table
        )))
    }

    fn error(&self, message: String) -> LeaseError {
        LeaseError::Store {
            location: self.location(),
            message,
        }
    }

    /// One line: the service's code and message, else the cause.
    fn sdk_error<E>(&self, action: &str, e: &SdkError<E, HttpResponse>) -> LeaseError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let cause = match e.as_service_error() {
            Some(service) => format!(
                "{}: {}",
                service.code().unwrap_or("error"),
                service.message().unwrap_or_default()
            ),
            None => DisplayErrorContext(e).to_string(),
        };
        self.error(format!("{action}: {cause}"))
    }

    fn key(lease: &Lease) -> Item {
        HashMap::from([
            ("stream".to_owned(), AttributeValue::S(lease.stream.clone())),
            ("shard".to_owned(), AttributeValue::S(lease.shard.clone())),
        ])
    }

    /// One conditional UpdateItem; the lease as it is after it.
    async fn update(
        &self,
        lease: &Lease,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Lease, LeaseError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(lease)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#counter", "counter")
            .set_expression_attribute_values(Some(
                values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => lease_of(&out.attributes.unwrap_or_default())
                .ok_or_else(|| self.error(format!("unreadable lease of shard {}", lease.shard))),
            Err(e) if is_code(&e, "ConditionalCheckFailedException") => Err(LeaseError::Changed {
                shard: lease.shard.clone(),
            }),
            Err(e) => Err(self.sdk_error("UpdateItem", &e)),
        }
    }
}

#[async_trait]
impl LeaseStore for DynamoDbLeaseStore {
    async fn list(&self, stream: &str) -> Result<Vec<Lease>, LeaseError> {
        let mut leases = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#stream = :stream")
                .expression_attribute_names("#stream", "stream")
                .expression_attribute_values(":stream", AttributeValue::S(stream.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("Query", &e))?;
            for item in out.items() {
                // One bad item (written by hand?) must not stop the
                // coordination of every other shard.
                match lease_of(item) {
                    Some(lease) => leases.push(lease),
                    None => tracing::warn!(
                        table = %self.table,
                        stream,
                        shard = item.get("shard").and_then(|v| v.as_s().ok()).map(String::as_str),
                        "unreadable lease item: left alone"
                    ),
                }
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(leases),
            }
        }
    }

    async fn create(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let mut item = Self::key(lease);
        item.insert(
            "counter".into(),
            AttributeValue::N(lease.counter.to_string()),
        );
        item.insert(
            "parents".into(),
            AttributeValue::L(
                lease
                    .parents
                    .iter()
                    .cloned()
                    .map(AttributeValue::S)
                    .collect(),
            ),
        );
        if let Some(checkpoint) = &lease.checkpoint {
            item.insert("checkpoint".into(), position_value(checkpoint));
        }
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#shard)")
            .expression_attribute_names("#shard", "shard")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_code(&e, "ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.sdk_error("PutItem", &e)),
        }
    }

    async fn take(&self, seen: &Lease, owner: &str) -> Result<Lease, LeaseError> {
        self.update(
            seen,
            "SET #owner = :owner, #counter = #counter + :one REMOVE wanted_by",
            "#counter = :seen",
            vec![
                (":owner", AttributeValue::S(owner.to_owned())),
                (":one", AttributeValue::N("1".into())),
                (":seen", AttributeValue::N(seen.counter.to_string())),
            ],
        )
        .await
    }

    async fn renew(
        &self,
        held: &Lease,
        checkpoint: Option<&ShardPosition>,
    ) -> Result<Lease, LeaseError> {
        let mut values = held_values(held)?;
        let update = match checkpoint {
            Some(position) => {
                values.push((":checkpoint", position_value(position)));
                "SET #counter = #counter + :one, checkpoint = :checkpoint"
            }
            None => "SET #counter = #counter + :one",
        };
        self.update(held, update, "#owner = :me AND #counter = :held", values)
            .await
    }

    async fn want(&self, seen: &Lease, owner: &str) -> Result<Lease, LeaseError> {
        let Some(holder) = &seen.owner else {
            return Err(LeaseError::Changed {
                shard: seen.shard.clone(),
            });
        };
        self.update(
            seen,
            "SET wanted_by = :wanted_by",
            "#owner = :holder AND attribute_exists(#counter)",
            vec![
                (":wanted_by", AttributeValue::S(owner.to_owned())),
                (":holder", AttributeValue::S(holder.clone())),
            ],
        )
        .await
    }

    async fn release(
        &self,
        held: &Lease,
        checkpoint: Option<&ShardPosition>,
    ) -> Result<Lease, LeaseError> {
        let mut values = held_values(held)?;
        let update = match checkpoint {
            Some(position) => {
                values.push((":checkpoint", position_value(position)));
                "SET #counter = #counter + :one, checkpoint = :checkpoint REMOVE #owner, wanted_by"
            }
            None => "SET #counter = #counter + :one REMOVE #owner, wanted_by",
        };
        self.update(held, update, "#owner = :me AND #counter = :held", values)
            .await
    }

    fn location(&self) -> String {
        format!("dynamodb:{}", self.table)
    }
}

/// The condition values of a write by the lease's holder.
fn held_values(held: &Lease) -> Result<Vec<(&'static str, AttributeValue)>, LeaseError> {
    let owner = held.owner.clone().ok_or_else(|| LeaseError::Changed {
        shard: held.shard.clone(),
    })?;
    Ok(vec![
        (":me", AttributeValue::S(owner)),
        (":held", AttributeValue::N(held.counter.to_string())),
        (":one", AttributeValue::N("1".into())),
    ])
}

fn position_value(position: &ShardPosition) -> AttributeValue {
    AttributeValue::S(serde_json::to_string(position).expect("a position serializes"))
}

fn lease_of(item: &Item) -> Option<Lease> {
    let string = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    Some(Lease {
        stream: string("stream")?,
        shard: string("shard")?,
        owner: string("owner"),
        counter: match item.get("counter")? {
            AttributeValue::N(n) => n.parse().ok()?,
            _ => return None,
        },
        checkpoint: match string("checkpoint") {
            Some(json) => Some(serde_json::from_str(&json).ok()?),
            None => None,
        },
        parents: match item.get("parents") {
            Some(AttributeValue::L(list)) => {
                list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
            }
            _ => Vec::new(),
        },
        wanted_by: string("wanted_by"),
    })
}

fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some(code)
}
