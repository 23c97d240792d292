package io.shiftstream.flink;

import org.apache.flink.api.common.eventtime.SerializableTimestampAssigner;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkGeneratorSupplier;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
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
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The Java front of the PyFlink job (built by `make setup`: jobs/flink/front.py; measured by bench/flink_front.py).
 * The deployed job reads Kafka through a Deserializer and keys by RowKey, so that the only Python operator per
 * event is the keyed one (jobs/flink/functions.py: FrontCore): Kafka record -> Row(pseudonymised user key, event row
 * (key, Kafka timestamp, partition, offset, raw value, Avro ts, own watermark, source)).
 *
 * <p>Layout of the value (Confluent wire format): byte 0 = magic 0, bytes 1-4 = schema id (big endian), then the
 * Avro binary of schemas/interaction.avsc, whose first fields are event_id string, user_id string, event_type enum
 * (8 symbols), ts long (timestamp-millis); a PrivacyRequest (schemas/privacy_request.avsc) starts the same way
 * (request_id, user_id, kind enum of 4, ts). Only that prefix, the envelope, is read here; Python decodes the rest.
 *
 * <p>Event time per partition, as transforms/watermarks.py's rule: a record whose envelope is readable and
 * plausible (transforms/envelope.py says when, for every engine) counts towards its partition's frontier, the
 * (tolerance + 1)-th latest event time among its last `window` such records, never decreasing. Each event row
 * carries its partition's own watermark after it (frontier minus the allowed lateness, null before there is one),
 * which the core judges it late against, and OwnWatermarks makes that the split's Flink watermark: the Kafka source
 * takes the least over its splits, with idleness, as the reference runner does over partitions.
 *
 * <p>Anything that cannot be read (null value, short, bad magic byte, schema id not listed, bad varint, string
 * running past the end, enum index out of range) never throws: it gives a row whose key is "!" + partition + ":" +
 * offset and whose event_ts is null, so Python can dead-letter it.
 */
public final class Front {

    private Front() {}

    /** Field names of the event row. */
    public static final String[] EVENT_FIELDS =
            {"key", "ts", "partition", "offset", "payload", "event_ts", "own", "source"};

    /** What the source field says: an Interaction of the events topic, a PrivacyRequest of the privacy topic. */
    public static final int EVENTS = 0;
    public static final int PRIVACY = 1;

    /**
     * The event row: key STRING, ts LONG (Kafka timestamp), partition INT, offset LONG, payload BYTES, event_ts LONG
     * (Avro ts, null if unparsed), own LONG (the partition's own watermark after this record, null before it has
     * one), source INT (EVENTS or PRIVACY).
     */
    public static RowTypeInfo eventType() {
        return new RowTypeInfo(
                new TypeInformation<?>[] {
                    BasicTypeInfo.STRING_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO,
                    BasicTypeInfo.INT_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO,
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO,
                    BasicTypeInfo.LONG_TYPE_INFO,
                    BasicTypeInfo.INT_TYPE_INFO
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

    /** Row(key, packed event): the key and the event row as bytes (Deserializer.pack). */
    public static RowTypeInfo packedType() {
        return new RowTypeInfo(
                new TypeInformation<?>[] {
                    BasicTypeInfo.STRING_TYPE_INFO, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO
                },
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
        private boolean packed;          // with wrap: Row(key, packed bytes) (see pack), the job's form
        private final int source;        // EVENTS or PRIVACY
        private final long lateness;     // event_time.allowed_lateness
        private final int rank;          // event_time.outlier_tolerance + 1
        private final int window;        // event_time.outlier_window
        private final int maxBytes;      // limits.max_message_bytes
        private final int maxId;         // limits.max_id_length (characters)
        private final long maxFuture;    // event_time.max_future_skew
        private transient Mac mac;
        private transient byte[] digest;
        private transient Map<Integer, Frontier> frontiers;

        /** wrap=true, any schema id, 8 event_type symbols, the default event_time and limits settings. */
        public Deserializer(byte[] secret) {
            this(secret, new int[0], 8, true, EVENTS, 1_800_000L, 3, 256, 1 << 20, 128, 300_000L);
        }

        public Deserializer(byte[] secret, int[] schemaIds, int enumSymbols, boolean wrap, int source,
                            long lateness, int tolerance, int window, int maxBytes, int maxId, long maxFuture) {
            if (secret == null || secret.length < 16) {
                throw new IllegalArgumentException("the pseudonym key must be at least 16 bytes");
            }
            if (tolerance < 0 || window <= tolerance) {
                throw new IllegalArgumentException("the outlier window must be above the tolerance");
            }
            this.secret = secret.clone();
            this.schemaIds = schemaIds == null ? new int[0] : schemaIds.clone();
            Arrays.sort(this.schemaIds);
            this.enumSymbols = enumSymbols;
            this.wrap = wrap;
            this.source = source;
            this.lateness = lateness;
            this.rank = tolerance + 1;
            this.window = window;
            this.maxBytes = maxBytes;
            this.maxId = maxId;
            this.maxFuture = maxFuture;
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
            Long own = null;
            try {
                long[] r = v == null || v.length > maxBytes ? null : parse(v);
                if (r != null) {
                    key = pseudonym(v, (int) r[0], (int) r[1]);
                    eventTs = r[2];
                    if (source == EVENTS) {
                        if (plausible(v, r)) {
                            own = frontier(partition).observe(r[2]);
                        } else {
                            own = frontier(partition).own();
                        }
                    }
                }
            } catch (RuntimeException e) { // never fail the source on a bad record
                key = null;
                eventTs = null;
            }
            if (key == null) {
                key = "!" + partition + ":" + offset;
            }
            if (own == null && source == EVENTS) {
                own = frontier(partition).own();
            }
            byte[] value = v == null ? new byte[0] : v;
            if (packed) {
                out.collect(Row.of(key, pack(key, ts, partition, offset, value, eventTs, own)));
                return;
            }
            Row event = Row.of(key, ts, partition, offset, value, eventTs, own, source);
            out.collect(wrap ? Row.of(key, event) : event);
        }

        /** Bytes of the packed form's fixed fields (see pack). */
        public static final int PACKED_HEADER = 1 + 4 + 8 + 8 + 8 + 8 + 1;

        /**
         * The event row as one byte array, which crosses into Python as bytes, with no per-field conversion and no
         * call back into Java for the key (jobs/flink/front.py unpacks it): source (1 byte), partition (int),
         * offset, ts, event_ts, own (longs, big endian; Long.MIN_VALUE for a null), the key's length (1 byte), the
         * key (ASCII: a pseudonym or "!partition:offset"), then the raw value.
         */
        byte[] pack(String key, long ts, int partition, long offset, byte[] value, Long eventTs, Long own) {
            byte[] k = key.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(PACKED_HEADER + k.length + value.length);
            b.put((byte) source).putInt(partition).putLong(offset).putLong(ts)
                    .putLong(eventTs == null ? Long.MIN_VALUE : eventTs).putLong(own == null ? Long.MIN_VALUE : own)
                    .put((byte) k.length).put(k).put(value);
            return b.array();
        }

        /** Emit Row(key, packed bytes) instead of Row(key, event row): the job's form (see pack). */
        public Deserializer packed() {
            if (!wrap) {
                throw new IllegalStateException("the packed form is a wrapped one");
            }
            this.packed = true;
            return this;
        }

        /**
         * Whether a readable envelope counts towards its partition's frontier (transforms/envelope.py: the same
         * rule): event_id and user_id not empty and at most maxId characters, 0 < ts <= now + maxFuture.
         */
        boolean plausible(byte[] b, long[] r) {
            long t = r[2];
            if (t <= 0 || t > System.currentTimeMillis() + maxFuture) return false;
            return r[3] > 0 && chars(b, (int) r[4], (int) r[3]) <= maxId
                    && r[1] > 0 && chars(b, (int) r[0], (int) r[1]) <= maxId;
        }

        /** Characters of UTF-8 bytes: the bytes that do not continue a character. */
        static int chars(byte[] b, int off, int len) {
            int n = 0;
            for (int i = off; i < off + len; i++) {
                if ((b[i] & 0xc0) != 0x80) n++;
            }
            return n;
        }

        private Frontier frontier(int partition) {
            if (frontiers == null) {
                frontiers = new HashMap<>();
            }
            return frontiers.computeIfAbsent(partition, p -> new Frontier(rank, window, lateness));
        }

        /** {user_id start, user_id length, ts, event_id length, event_id start} or null. */
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
            int eventStart = pos[0];
            int eventLen = (int) n;
            pos[0] += eventLen;
            n = readLong(b, pos);                        // user_id
            if (n < 0 || n > b.length - pos[0]) return null;
            int userStart = pos[0];
            int userLen = (int) n;
            pos[0] += userLen;
            long e = readLong(b, pos);                   // event_type
            if (e < 0 || e >= enumSymbols) return null;
            long t = readLong(b, pos);                   // ts
            return new long[] {userStart, userLen, t, eventLen, eventStart};
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
                if (shift == 63 && (x & 0x7e) != 0) {
                    throw new IllegalArgumentException("varint over 64 bits");
                }
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
            return rowOf(value, 0, 0L);
        }

        /** For checks from Python: the row a value would give at this partition and offset (ts 0). */
        public Row rowOf(byte[] value, int partition, long offset) {
            Row[] got = new Row[1];
            deserialize(new ConsumerRecord<>("t", partition, offset, null, value), new Collector<Row>() {
                @Override public void collect(Row r) { got[0] = r; }
                @Override public void close() {}
            });
            return got[0];
        }

        @Override
        public TypeInformation<Row> getProducedType() {
            return packed ? packedType() : wrap ? keyedType() : eventType();
        }
    }

    /** One partition's frontier (transforms/watermarks.py): the rank-th latest of its last `window` event times. */
    static final class Frontier {
        private final int rank;
        private final int window;
        private final long lateness;
        private final long[] recent;     // ring buffer of the last `window` times
        private final long[] ranked;     // the same times, sorted
        private int size;
        private int head;
        private long frontier = Long.MIN_VALUE;

        Frontier(int rank, int window, long lateness) {
            this.rank = rank;
            this.window = window;
            this.lateness = lateness;
            this.recent = new long[window];
            this.ranked = new long[window];
        }

        /** Note a time; the partition's own watermark after it (null before it has a frontier). */
        Long observe(long t) {
            if (size == window) {                  // the oldest leaves the window
                long old = recent[head];
                int i = Arrays.binarySearch(ranked, 0, size, old);
                System.arraycopy(ranked, i + 1, ranked, i, size - i - 1);
                size--;
                recent[head] = t;
                head = (head + 1) % window;
            } else {
                recent[(head + size) % window] = t;
            }
            int i = size == 0 || t >= ranked[size - 1] ? size : insertionPoint(t);
            System.arraycopy(ranked, i, ranked, i + 1, size - i);
            ranked[i] = t;
            size++;
            if (size >= rank && ranked[size - rank] > frontier) {
                frontier = ranked[size - rank];
            }
            return own();
        }

        private int insertionPoint(long t) {
            int i = Arrays.binarySearch(ranked, 0, size, t);
            if (i < 0) return -i - 1;
            while (i < size && ranked[i] == t) i++;   // after equal times, as bisect's insort
            return i;
        }

        Long own() {
            return frontier == Long.MIN_VALUE ? null : frontier - lateness;
        }
    }

    /** Field 5 (event_ts) or 6 (own) of an event row, wrapped, packed or not; null where it has none. */
    static Long field(Row row, int index) {
        if (row.getArity() == 2) {
            Object event = row.getField(1);
            if (event instanceof byte[]) {
                long v = java.nio.ByteBuffer.wrap((byte[]) event).getLong(index == 5 ? 21 : 29);
                return v == Long.MIN_VALUE ? null : v;
            }
            row = (Row) event;
        }
        return (Long) row.getField(index);
    }

    /** A split's Flink watermark: the latest own watermark its rows carry (never decreasing). */
    public static final class OwnWatermarks implements WatermarkGenerator<Row> {
        private long latest = Long.MIN_VALUE;

        @Override
        public void onEvent(Row row, long eventTimestamp, WatermarkOutput output) {
            Long own = field(row, 6);
            if (own != null && own > latest) {
                latest = own;
            }
        }

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            if (latest != Long.MIN_VALUE) {
                output.emitWatermark(new Watermark(latest));
            }
        }
    }

    /** Holds no watermark back: the privacy topic's (its requests apply on arrival, as the reference runner's). */
    public static final class NoHold implements WatermarkGenerator<Row> {
        @Override
        public void onEvent(Row row, long eventTimestamp, WatermarkOutput output) {}

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
            output.markIdle();
        }
    }

    static final class OwnSupplier implements WatermarkGeneratorSupplier<Row> {
        private static final long serialVersionUID = 1L;

        @Override
        public WatermarkGenerator<Row> createWatermarkGenerator(WatermarkGeneratorSupplier.Context context) {
            return new OwnWatermarks();
        }
    }

    static final class NoHoldSupplier implements WatermarkGeneratorSupplier<Row> {
        private static final long serialVersionUID = 1L;

        @Override
        public WatermarkGenerator<Row> createWatermarkGenerator(WatermarkGeneratorSupplier.Context context) {
            return new NoHold();
        }
    }

    /** The events topic's watermarks: per split, OwnWatermarks, idle after idlenessMs; event time = the Avro ts. */
    public static WatermarkStrategy<Row> eventWatermarks(long idlenessMs) {
        return WatermarkStrategy.forGenerator(new OwnSupplier())
                .withTimestampAssigner((SerializableTimestampAssigner<Row>) new AvroTs())
                .withIdleness(Duration.ofMillis(idlenessMs));
    }

    /** The privacy topic's: none held back (idle). */
    public static WatermarkStrategy<Row> privacyWatermarks() {
        return WatermarkStrategy.forGenerator(new NoHoldSupplier())
                .withTimestampAssigner((SerializableTimestampAssigner<Row>) new AvroTs());
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
            Long t = field(row, 5);
            return t == null ? recordTimestamp : t;
        }
    }
}
