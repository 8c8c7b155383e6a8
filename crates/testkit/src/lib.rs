//! Test parts for the DynamoDB event source, all real: AWS's DynamoDB Local, real HTTP
//! servers on loopback, and a fault-injecting proxy in front of DynamoDB Local whose records
//! stay DynamoDB Local's own.
//!
//! - [`DynamoDbLocal`] (module `local`): the emulator instance of this test process.
//! - [`TestTable`], [`items`], [`read_stream`] (module `table`): tables with streams, writes,
//!   and a reference reader for what should arrive.
//! - [`FaultProxy`] (module `proxy`): faults, call counters, virtual shard splits and
//!   trimming for the DynamoDB Streams API.
//! - [`RecordingSink`] (module `sink`): a CloudEvents HTTP sink that records, rejects and goes
//!   down on demand.
//! - [`ThreadedSink`] (module `threaded_sink`): a CloudEvents HTTP sink built like Python's
//!   `ThreadingHTTPServer` (listen backlog 5, one accept thread, a thread per connection),
//!   whose accept queue overflows when a client opens many connections at once, and a
//!   [`FullListener`] whose accept queue is full (connects to it hang).
//! - [`AdapterProcess`], [`free_port`] (module `process`): the adapter binary as a child.
//! - [`Kill`] (module `replay`): what a `kill -9` makes the adapter send again, measured from
//!   the sink's log and the checkpoint file.
//! - [`dynamodb_client`], [`streams_client`] (module `clients`): SDK clients for tests.
//!
//! DynamoDB Local: each test process starts its own JVM on first use (about 3 s), unless
//! `DYNAMODB_LOCAL_ENDPOINT` names a running one, e.g. from
//! `export DYNAMODB_LOCAL_ENDPOINT=$(scripts/ddb-local start 8000)` — worth it under
//! `cargo nextest`, which runs every test in its own process.
//!
//! A DynamoDB Local quirk to know: an iterator taken on a stream shard that has no record yet
//! is positioned at the shard's StartingSequenceNumber; sequence numbers are global across
//! tables, so once another table's write takes that number, GetRecords on the iterator (and
//! on the NextShardIterators it returns while the shard is empty) answers
//! `TrimmedDataAccessException` although nothing was trimmed. A fresh TRIM_HORIZON iterator
//! then reads everything.

mod clients;
mod local;
mod process;
mod proxy;
mod replay;
mod server;
mod sink;
mod table;
mod threaded_sink;
mod util;

pub use clients::{REGION, Retries, dynamodb_client, streams_client};
pub use local::{DynamoDbLocal, script_path};
pub use process::{AdapterProcess, free_port};
pub use proxy::{Fault, FaultProxy, Op, SplitInfo};
pub use replay::{Kill, Saved, saved_positions};
pub use sink::{ReceivedEvent, RecordingSink};
pub use table::{
    AttributeValue, Item, KeyShape, ShardRead, StreamViewType, TestTable, describe_all_shards,
    items, read_stream, record_sequence_number,
};
pub use threaded_sink::{
    FullListener, PYTHON_LISTEN_BACKLOG, ThreadedSink, ThreadedSinkCounts, ThreadedSinkOptions,
};
