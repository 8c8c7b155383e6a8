// Command golden-gen reproduces, byte for byte, the `data` of the events sent
// by TriggerMesh's original (Go) Amazon DynamoDB source adapter.
//
// It reads one DynamoDB Streams GetRecords response body (the JSON exactly as
// the service returns it), unmarshals it into dynamodbstreams.GetRecordsOutput
// with the SDK's own JSON protocol unmarshaller (what aws-sdk-go v1 does with
// a real response), and prints encoding/json's json.Marshal of every record,
// one line per record, in order, and nothing else.
//
// Build (GOPATH mode, no network, Debian packages golang-go and
// golang-github-aws-aws-sdk-go-dev):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o /tmp/golden-gen .
//
// Usage: golden-gen FILE   (FILE "-" or no argument: read standard input)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go/private/protocol/json/jsonutil"
	"github.com/aws/aws-sdk-go/service/dynamodbstreams"
)

func main() {
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: golden-gen [FILE]")
		os.Exit(2)
	}

	var in io.Reader = os.Stdin
	if len(os.Args) == 2 && os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "golden-gen:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}

	// Same call as aws-sdk-go's jsonrpc.Unmarshal handler makes on a 2xx body.
	var out dynamodbstreams.GetRecordsOutput
	if err := jsonutil.UnmarshalJSON(&out, in); err != nil {
		fmt.Fprintln(os.Stderr, "golden-gen: unmarshal:", err)
		os.Exit(1)
	}

	w := bufio.NewWriter(os.Stdout)
	for i, record := range out.Records {
		// Same call as the original adapter (event.SetData with
		// application/json ends in encoding/json's json.Marshal).
		b, err := json.Marshal(record)
		if err != nil {
			fmt.Fprintf(os.Stderr, "golden-gen: marshal record %d: %v\n", i, err)
			os.Exit(1)
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "golden-gen:", err)
		os.Exit(1)
	}
}
