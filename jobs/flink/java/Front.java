package io.shiftstream.flink;

import org.apache.flink.api.common.eventtime.SerializableTimestampAssigner;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.BasicTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import java.security.GeneralSecurityException;
import java.util.Arrays;

/**
 * The Java front of the PyFlink job (built by `make setup`: jobs/flink/front.py; measured by bench/flink_front.py).
 * The deployed job reads Kafka through the Deserializer for each record's partition and offset; its keyed path
 * (RowKey, one Python operator per event) is not wired into jobs/flink/topology.py yet: Kafka record -> (pseudonymised user key, Kafka timestamp, partition, offset,
 * raw value, Avro ts), so that the only Python operator per event is the keyed one.
 *
 * <p>Layout of the value (Confluent wire format): byte 0 = magic 0, bytes 1-4 = schema id (big endian), then the
 * Avro binary of schemas/interaction.avsc, whose first fields are event_id string, user_id string, event_type enum
 * (8 symbols), ts long (timestamp-millis). Only that prefix is read here; Python decodes the whole record.
 *
 * <p>Anything that cannot be read (null value, short, bad magic byte, schema id not listed, bad varint, string
 * running past the end, enum index out of range) never throws: it gives a row whose key is "!" + partition + ":" +
 * offset and whose event_ts is null, so Python can dead-letter it.
 */
public final class Front {

    private Front() {}

    /** Field names of the event row. */
    public static final String[] EVENT_FIELDS = {"key", "ts", "partition", "offset", "payload", "event_ts"};

    /** The event row: key STRING, ts LONG (Kafka timestamp), partition INT, offset LONG, payload BYTES, event_ts LONG (Avro ts, null if unparsed). */
    public static RowTypeInfo eventType() {
        return new RowTypeInfo(
                new TypeInformation<?>[] {
                    BasicTypeInfo.STRING_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO,
                    BasicTypeInfo.INT_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO,
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO
                },
                EVENT_FIELDS);
    }

    /**
     * What PyFlink's keyed Python operators expect on their input: Row(key, event). (Their Python side calls
     * process_element(value[1]) and the Java side reads the key type from field 0 of the input RowTypeInfo.)
     */
    public static RowTypeInfo keyedType() {
        return new RowTypeInfo(
                new TypeInformation<?>[] {BasicTypeInfo.STRING_TYPE_INFO, eventType()},
                new String[] {"key", "event"});
    }

    /** The key row type PyFlink's keyed operators expect (Row with one field): Types.ROW([Types.STRING()]). */
    public static RowTypeInfo keyRowType() {
        return new RowTypeInfo(BasicTypeInfo.STRING_TYPE_INFO);
    }

    /** KafkaRecordDeserializationSchema<Row>: see the class comment. */
    public static final class Deserializer implements KafkaRecordDeserializationSchema<Row> {
        private static final long serialVersionUID = 1L;
        private static final char[] HEX = "0123456789abcdef".toCharArray();

        private final byte[] secret;
        private final int[] schemaIds;   // sorted; empty = any id
        private final int enumSymbols;
        private final boolean wrap;      // true: emit Row(key, event) (for PyFlink keyed operators); false: the event row
        private transient Mac mac;
        private transient byte[] digest;

        /** wrap=true, any schema id, 8 event_type symbols. */
        public Deserializer(byte[] secret) {
            this(secret, new int[0], 8, true);
        }

        public Deserializer(byte[] secret, int[] schemaIds, int enumSymbols, boolean wrap) {
            if (secret == null || secret.length < 16) {
                throw new IllegalArgumentException("the pseudonym key must be at least 16 bytes");
            }
            this.secret = secret.clone();
            this.schemaIds = schemaIds == null ? new int[0] : schemaIds.clone();
            Arrays.sort(this.schemaIds);
            this.enumSymbols = enumSymbols;
            this.wrap = wrap;
        }

        @Override
        public void open(DeserializationSchema.InitializationContext context) {
            mac();
        }

        private Mac mac() {
            if (mac == null) {
                try {
                    mac = Mac.getInstance("HmacSHA256");
                    mac.init(new SecretKeySpec(secret, "HmacSHA256"));
                } catch (GeneralSecurityException e) {
                    throw new IllegalStateException(e);
                }
                digest = new byte[32];
            }
            return mac;
        }

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Row> out) {
            byte[] v = record.value();
            long ts = record.timestamp();
            int partition = record.partition();
            long offset = record.offset();
            String key = null;
            Long eventTs = null;
            try {
                long[] r = parse(v);
                if (r != null) {
                    key = pseudonym(v, (int) r[0], (int) r[1]);
                    eventTs = r[2];
                }
            } catch (RuntimeException e) { // never fail the source on a bad record
                key = null;
                eventTs = null;
            }
            if (key == null) {
                key = "!" + partition + ":" + offset;
            }
            Row event = Row.of(key, ts, partition, offset, v == null ? new byte[0] : v, eventTs);
            out.collect(wrap ? Row.of(key, event) : event);
        }

        /** {user_id start, user_id length, ts} or null. */
        long[] parse(byte[] b) {
            if (b == null || b.length < 6 || b[0] != 0) {
                return null;
            }
            if (schemaIds.length > 0) {
                int id = ((b[1] & 0xff) << 24) | ((b[2] & 0xff) << 16) | ((b[3] & 0xff) << 8) | (b[4] & 0xff);
                if (Arrays.binarySearch(schemaIds, id) < 0) {
                    return null;
                }
            }
            int[] pos = {5};
            long n = readLong(b, pos);                   // event_id
            if (n < 0 || n > b.length - pos[0]) return null;
            pos[0] += (int) n;
            n = readLong(b, pos);                        // user_id
            if (n < 0 || n > b.length - pos[0]) return null;
            int userStart = pos[0];
            int userLen = (int) n;
            pos[0] += userLen;
            long e = readLong(b, pos);                   // event_type
            if (e < 0 || e >= enumSymbols) return null;
            long t = readLong(b, pos);                   // ts
            return new long[] {userStart, userLen, t};
        }

        /** Avro zigzag varint long; throws on a truncated or over-long varint. */
        static long readLong(byte[] b, int[] pos) {
            int p = pos[0];
            long acc = 0;
            int shift = 0;
            while (true) {
                if (p >= b.length || shift > 63) {
                    throw new IllegalArgumentException("bad varint");
                }
                int x = b[p++];
                acc |= (long) (x & 0x7f) << shift;
                if ((x & 0x80) == 0) break;
                shift += 7;
            }
            pos[0] = p;
            return (acc >>> 1) ^ -(acc & 1);
        }

        /** As transforms/pseudonyms.py: hmac.new(key, user_id.encode(), sha256).hexdigest()[:32]. */
        String pseudonym(byte[] b, int off, int len) {
            Mac m = mac();
            m.update(b, off, len);
            try {
                m.doFinal(digest, 0);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
            char[] c = new char[32];
            for (int i = 0; i < 16; i++) {
                c[2 * i] = HEX[(digest[i] >> 4) & 0xf];
                c[2 * i + 1] = HEX[digest[i] & 0xf];
            }
            return new String(c);
        }

        /** For checks from Python: the pseudonym of a raw id (UTF-8). */
        public String pseudonymOf(String userId) {
            byte[] u = userId.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            return pseudonym(u, 0, u.length);
        }

        /** For checks from Python: the row a value would give (partition 0, offset 0, ts 0). */
        public Row rowOf(byte[] value) {
            Row[] got = new Row[1];
            deserialize(new ConsumerRecord<>("t", 0, 0L, null, value), new Collector<Row>() {
                @Override public void collect(Row r) { got[0] = r; }
                @Override public void close() {}
            });
            return got[0];
        }

        @Override
        public TypeInformation<Row> getProducedType() {
            return wrap ? keyedType() : eventType();
        }
    }

    /**
     * KeySelector<Row, Row>: Row.of(field 0), key type Row(STRING). This is what PyFlink's own key_by uses
     * (KeyByKeySelector): EmbeddedPythonKeyedProcessOperator casts the current key (and timer keys) to Row and
     * reads its field 0 for ctx.get_current_key(), and PyFlink's state backend serializes keys as Row(STRING).
     */
    public static final class RowKey implements KeySelector<Row, Row> {
        private static final long serialVersionUID = 1L;

        @Override
        public Row getKey(Row row) {
            return Row.of(row.getField(0));
        }
    }

    /** The Avro ts as event time (event_ts, field 5 of the event row, wrapped or not), else the Kafka timestamp. */
    public static final class AvroTs implements SerializableTimestampAssigner<Row> {
        private static final long serialVersionUID = 1L;

        @Override
        public long extractTimestamp(Row row, long recordTimestamp) {
            Row event = row.getArity() == 2 ? (Row) row.getField(1) : row;
            Object t = event.getField(5);
            return t == null ? recordTimestamp : (Long) t;
        }
    }
}
